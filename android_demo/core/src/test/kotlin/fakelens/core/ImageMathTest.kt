package fakelens.core

import fakelens.core.Golden.int
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

/** ELA arithmetic, Pillow-compatible resizing and the whole preprocessing, bit for bit. */
@Suppress("UNCHECKED_CAST")
class ImageMathTest {
    private fun scaleOf(v: Any?): ElaScale = if (v == "auto") ElaScale.Auto else ElaScale.Fixed((v as Number).toDouble())

    /** ela.error_level's output, recomputed from the same Pillow re-save: must be identical. */
    @TestFactory
    fun `ELA equals ela_error_level given Pillow's round trip`() = Golden.list("ela").map { case ->
        val name = case["image"] as String
        val q = case.int("quality")
        DynamicTest.dynamicTest("$name q$q scale ${case["scale"]}") {
            val img = Golden.image(name)
            val expected = Golden.rgb(case["file"] as String, img.width, img.height)
            val got = Ela.errorLevel(img, ElaParams(q, scaleOf(case["scale"])), Golden.PillowReplayCodec)
            assertImagesEqual(expected, got)
        }
    }

    @Test
    fun `ELA arithmetic edge cases`() {
        val a = RgbImage(2, 1, byteArrayOf(0, 10, 20, -1, 3, 7))
        val b = RgbImage(2, 1, byteArrayOf(3, 10, 17, -7, 0, 7)) // diffs 3,0,3,6,3,0 -> peak 6
        // auto: (d*255 + 3) / 6 -> 3 -> 128 (127.5 rounds half up), 6 -> 255
        assertArrayEquals(byteArrayOf(128.toByte(), 0, 128.toByte(), 255.toByte(), 128.toByte(), 0), Ela.fromResaved(a, b, ElaScale.Auto).data)
        // fixed 42.5: floor(d*42.5 + 0.5) clipped at 255 -> 128 (127.5+.5), 255
        assertArrayEquals(byteArrayOf(128.toByte(), 0, 128.toByte(), 255.toByte(), 128.toByte(), 0), Ela.fromResaved(a, b, ElaScale.Fixed(42.5)).data)
        assertArrayEquals(ByteArray(6), Ela.fromResaved(a, a, ElaScale.Auto).data) // identical re-save: zeros
        assertArrayEquals(ByteArray(6), Ela.fromResaved(a, a, ElaScale.Fixed(10.0)).data)
    }

    @TestFactory
    fun `bilinear resize equals Pillow's`() = Golden.list("resize").map { case ->
        val name = case["image"] as String
        val w = case.int("width")
        val h = case.int("height")
        DynamicTest.dynamicTest("$name -> ${w}x$h") {
            assertImagesEqual(Golden.rgb(case["file"] as String, w, h), Resize.bilinear(Golden.image(name), w, h))
        }
    }

    /** ela.Preprocessing.apply end to end, replaying Pillow's JPEG round trips. */
    @TestFactory
    fun `preprocessing equals ela_Preprocessing_apply`() = Golden.list("preprocessing").map { case ->
        DynamicTest.dynamicTest("${case["image"]} ${case["config"]}") {
            val pre = ModelInfo.preprocessingFromJson(case["preprocessing"] as Map<String, Any?>)
            val got = Preprocessor.apply(pre, false, Golden.image(case["image"] as String), Golden.PillowReplayCodec, case["sha256"] as String)
            assertImagesEqual(Golden.rgb(case["file"] as String, pre.inputSize, pre.inputSize), got)
        }
    }

    @Test
    fun `ela_in_graph feeds the resized RGB image`() {
        val img = Golden.image("large")
        val pre = Preprocessing(64, ElaParams(90), null)
        val got = Preprocessor.apply(pre, true, img, Golden.PillowReplayCodec)
        assertImagesEqual(Resize.square(img, 64), got)
    }

    @TestFactory
    fun `alpha is composited on white like ela_to_rgb`() = Golden.list("to_rgb").map { case ->
        DynamicTest.dynamicTest("${case["input"]}") {
            val w = case.int("width")
            val h = case.int("height")
            val got = RgbImage.fromRgba(w, h, Golden.bytes(case["input"] as String))
            assertImagesEqual(Golden.rgb(case["file"] as String, w, h), got)
        }
    }

    @Test
    fun `alpha compositing over white for every value`() {
        // Pillow's fixed-point result equals exact rounding of (c*a + 255*(255-a)) / 255 (checked here for all inputs)
        for (a in 0..255) for (c in 0..255) {
            val exact = Math.floor((c * a + 255 * (255 - a)) / 255.0 + 0.5).toInt()
            val got = RgbImage.overWhite(c, a)
            if (a == 0) assertEquals(255, got) else assertEquals(exact, got, "c=$c a=$a")
        }
    }

    @Test
    fun `ARGB round trip and float input`() {
        val img = Golden.image("gradient_noise")
        assertImagesEqual(img, RgbImage.fromArgb(img.width, img.height, img.toArgb()))
        val f = img.toFloatArray()
        assertEquals((img.data[5].toInt() and 0xFF).toFloat(), f[5])
    }

    companion object {
        fun assertImagesEqual(expected: RgbImage, got: RgbImage) {
            assertEquals(expected.width, got.width, "width")
            assertEquals(expected.height, got.height, "height")
            if (!expected.data.contentEquals(got.data)) {
                val i = expected.data.indices.first { expected.data[it] != got.data[it] }
                val px = i / 3
                throw AssertionError(
                    "images differ: max |diff| ${Ela.maxAbsDiff(expected, got)}, first at x=${px % expected.width} y=${px / expected.width} " +
                        "channel ${i % 3}: expected ${expected.data[i].toInt() and 0xFF}, got ${got.data[i].toInt() and 0xFF}",
                )
            }
        }
    }
}
