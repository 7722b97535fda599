package fakelens.core

import fakelens.core.Golden.int
import fakelens.core.ImageMathTest.Companion.assertImagesEqual
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

class OrientationInputTest {
    /** The upright image Pillow's exif_transpose (inside ela.to_rgb) makes for each EXIF orientation. */
    @TestFactory
    fun `EXIF orientation matches Pillow's exif_transpose`() = Golden.list("orientation").map { case ->
        val k = case.int("orientation")
        DynamicTest.dynamicTest("orientation $k") {
            val got = Orientation.apply(Golden.image(case["image"] as String), k)
            assertImagesEqual(Golden.rgb(case["file"] as String, case.int("width"), case.int("height")), got)
        }
    }

    @Test
    fun `unknown orientation leaves the image alone`() {
        val img = Golden.image("flat")
        assertSame(img, Orientation.apply(img, 0))
        assertSame(img, Orientation.apply(img, 9))
    }

    @Test
    fun `model input encodings`() {
        val img = RgbImage(1, 1, byteArrayOf(0, 128.toByte(), 255.toByte()))
        assertArrayEquals(floatArrayOf(0f, 128f, 255f), ModelInput.float32(img))
        assertArrayEquals(img.data, ModelInput.quantized(img, 1f, 0, signed = false))
        assertArrayEquals(img.data, ModelInput.quantized(img, 0f, 0, signed = false))
        // int8 input of a model fed 0..255 pixels: scale 1, zero point -128
        assertArrayEquals(byteArrayOf(-128, 0, 127), ModelInput.quantized(img, 1f, -128, signed = true))
        // a coarser scale rounds and clamps
        assertArrayEquals(byteArrayOf(0, 64, 127), ModelInput.quantized(img, 2f, 0, signed = true))
    }
}
