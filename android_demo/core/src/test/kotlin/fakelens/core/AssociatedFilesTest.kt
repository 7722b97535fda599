package fakelens.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import java.io.ByteArrayOutputStream
import java.util.zip.ZipEntry
import java.util.zip.ZipOutputStream

@Suppress("UNCHECKED_CAST")
class AssociatedFilesTest {
    /** Model files with a zip appended by Python's zipfile (how the metadata populator does it). */
    @TestFactory
    fun `reads fakelens json and labels from a tflite's appended zip`() =
        Golden.list("metadata").filter { it["container"] == "tflite" }.map { case ->
            DynamicTest.dynamicTest(case["file"] as String) {
                val model = Golden.bytes(case["file"] as String)
                val files = AssociatedFiles.of(model)
                assertEquals(setOf("labels.txt", "fakelens.json"), files.names)
                assertEquals("real\nfake\n", files.readText(AssociatedFiles.LABELS_TXT))
                assertNull(files.read("missing.txt"))
                ModelInfoTest.checkAgainst(AssociatedFiles.modelInfo(model), case["expected"] as Map<String, Any?>)
            }
        }

    /** A .tflite written by convert.metadata (tflite-support's populator); needs TensorFlow in PYTHON. */
    @Test
    fun `a real export from convert_metadata is read`() {
        val real = Golden.list("metadata").firstOrNull { it["real"] == true }
        assumeTrue(real != null, "make_golden.py ran without TensorFlow: no real export to read")
        val model = Golden.bytes(real!!["file"] as String)
        assertEquals("TFL3", String(model, 4, 4, Charsets.US_ASCII))
        val info = AssociatedFiles.modelInfo(model)
        ModelInfoTest.checkAgainst(info, real["expected"] as Map<String, Any?>)
        assertEquals(ElaParams(85, ElaScale.Fixed(7.5), ElaResolution.RESIZED), info.preprocessing.ela)
    }

    @Test
    fun `zip concatenated after the model with relative offsets is found too`() {
        val zip = ByteArrayOutputStream().also { bytes ->
            ZipOutputStream(bytes).use { z ->
                z.putNextEntry(ZipEntry("fakelens.json"))
                z.write(Golden.bytes("meta/gan_int8.json"))
                z.closeEntry()
                z.putNextEntry(ZipEntry("labels.txt").apply { method = ZipEntry.DEFLATED })
                z.write("real\nfake\n".toByteArray())
                z.closeEntry()
                z.setComment("a comment moves the end record")
            }
        }.toByteArray()
        val model = ByteArray(1000) { (it * 7).toByte() } + zip
        assertEquals("fakelens_gan_int8", AssociatedFiles.modelInfo(model).modelName)
        assertEquals("real\nfake\n", AssociatedFiles.of(model).readText("labels.txt"))
    }

    @Test
    fun `a model without metadata gives an actionable error`() {
        val e = assertThrows<AssociatedFilesException> { AssociatedFiles.of(ByteArray(5000) { 1 }) }
        assertTrue(e.message!!.contains("python -m convert"), e.message)
        assertThrows<AssociatedFilesException> { AssociatedFiles.of(ByteArray(3)) }
    }

    @Test
    fun `a corrupted entry is detected by its CRC`() {
        val model = Golden.bytes("meta/stored.tflite")
        val text = "\"fakelens_gan_int8\"".toByteArray()
        val at = indexOf(model, text)
        assertTrue(at > 0)
        model[at + 1] = 'F'.code.toByte()
        val e = assertThrows<AssociatedFilesException> { AssociatedFiles.of(model).read("fakelens.json") }
        assertTrue(e.message!!.contains("CRC"), e.message)
    }

    private fun indexOf(hay: ByteArray, needle: ByteArray): Int {
        outer@ for (i in 0..hay.size - needle.size) {
            for (j in needle.indices) if (hay[i + j] != needle[j]) continue@outer
            return i
        }
        return -1
    }
}
