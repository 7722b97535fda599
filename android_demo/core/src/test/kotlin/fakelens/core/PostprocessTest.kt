package fakelens.core

import fakelens.core.Golden.double
import fakelens.core.Golden.int
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

@Suppress("UNCHECKED_CAST")
class PostprocessTest {
    private fun info(threshold: Double, labels: List<String> = listOf("real", "fake")) =
        ModelInfo(1, "m", "c", "int8", labels, threshold, false, Preprocessing(224))

    /** Output tensors from make_golden.py with the probabilities and labels Python computed. */
    @TestFactory
    fun `golden output tensors`() = Golden.list("outputs").mapIndexed { i, case ->
        val kind = case["kind"] as String
        DynamicTest.dynamicTest("#$i $kind ${case["values"]} threshold ${case["threshold"]}") {
            val values = case["values"] as List<Number>
            val m = info(case.double("threshold"))
            val p = when (kind) {
                "float32" -> Postprocess.fromFloat(FloatArray(values.size) { values[it].toFloat() }, m)
                "logits" -> Postprocess.fromFloat(FloatArray(values.size) { values[it].toFloat() }, m, logits = true)
                "uint8", "int8" -> Postprocess.fromQuantized(
                    ByteArray(values.size) { values[it].toInt().toByte() }, case.double("scale"), case.int("zero_point"),
                    unsigned = kind == "uint8", info = m,
                )
                else -> error(kind)
            }
            assertEquals(case.double("p_fake"), p.pFake, 1e-6)
            assertEquals(case.double("p_real"), p.pReal, 1e-6)
            assertEquals(case["label"], p.label)
            assertEquals(case["label"] == "fake", p.isFake)
        }
    }

    @Test
    fun `threshold is inclusive`() {
        assertTrue(Postprocess.decide(doubleArrayOf(0.3, 0.7), info(0.7)).isFake)
        assertFalse(Postprocess.decide(doubleArrayOf(0.30000001, 0.69999999), info(0.7)).isFake)
    }

    @Test
    fun `a model with an uncertain band says whether the verdict is inside it`() {
        val banded = info(0.7).copy(uncertainBand = listOf(0.4, 0.9))
        val near = Postprocess.decide(doubleArrayOf(0.2, 0.8), banded)
        assertTrue(near.isFake)
        assertEquals(true, near.uncertain)
        assertEquals(false, Postprocess.decide(doubleArrayOf(0.05, 0.95), banded).uncertain)
        assertEquals(false, Postprocess.decide(doubleArrayOf(0.7, 0.3), banded).uncertain)
        assertEquals(null, Postprocess.decide(doubleArrayOf(0.2, 0.8), info(0.7)).uncertain)
    }

    @Test
    fun `labels come from the metadata, in its order`() {
        val p = Postprocess.decide(doubleArrayOf(0.9, 0.1), info(0.5, listOf("fake", "real")))
        assertEquals(0.9, p.pFake)
        assertEquals("fake", p.label)
        val q = Postprocess.decide(doubleArrayOf(0.2, 0.8), info(0.5, listOf("authentic", "generated")))
        assertEquals("generated", q.label) // no label named "fake": index 1 is the fake class
        assertThrows<IllegalArgumentException> { Postprocess.decide(doubleArrayOf(1.0), info(0.5)) }
    }

    @Test
    fun `dequantisation of uint8 and int8`() {
        assertArrayEquals(doubleArrayOf(0.0, 255 / 256.0), Postprocess.dequantize(byteArrayOf(0, -1), 1 / 256.0, 0, true))
        assertArrayEquals(doubleArrayOf(0.0, 255 / 256.0), Postprocess.dequantize(byteArrayOf(-128, 127), 1 / 256.0, -128, false))
        assertArrayEquals(doubleArrayOf(-0.5, 0.5), Postprocess.dequantize(byteArrayOf(0, 2), 0.5, 1, false))
    }

    @Test
    fun `softmax is stable and sums to one`() {
        val s = Postprocess.softmax(doubleArrayOf(1e4, 1e4 + Math.log(3.0)))
        assertEquals(0.25, s[0], 1e-12)
        assertEquals(0.75, s[1], 1e-12)
    }
}
