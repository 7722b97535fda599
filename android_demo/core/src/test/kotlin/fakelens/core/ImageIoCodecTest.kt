package fakelens.core

import fakelens.core.Golden.int
import fakelens.core.ImageMathTest.Companion.assertImagesEqual
import fakelens.core.jvm.ImageIoJpegCodec
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

/**
 * The javax.imageio codec against Pillow (libjpeg-turbo). Measured on OpenJDK 17 (Debian, linked
 * to the system libjpeg-turbo 2.1.5) and on Temurin 25 (its bundled IJG libjpeg 6b), against
 * Pillow 13 with libjpeg-turbo 3.2: the encoder writes the same tables, sampling and entropy-
 * coded bytes, and the decoder gives the same pixels — so exactness is asserted here.
 */
@Suppress("UNCHECKED_CAST")
class ImageIoCodecTest {
    private val codec = ImageIoJpegCodec()

    @Test
    fun `quality tables are libjpeg's jpeg_set_quality`() {
        // spot values from libjpeg: q50 is the standard table, q100 all ones, q1 clamps at 255
        assertArrayEquals(JpegTables.STD_LUMINANCE, JpegTables.luminance(50))
        assertArrayEquals(IntArray(64) { 1 }, JpegTables.luminance(100))
        assertEquals(255, JpegTables.chrominance(1)[63])
        assertEquals(3, JpegTables.luminance(90)[0]) // (16*20+50)/100
        assertEquals(8, JpegTables.luminance(75)[0])
        assertEquals(5000 / 11, JpegTables.qualityScaling(11))
    }

    /** Encoder: same quantisation tables, 4:2:0 baseline, and identical entropy-coded data. */
    @TestFactory
    fun `encoder output matches Pillow's JPEG`() = Golden.list("jpeg").map { case ->
        val name = case["image"] as String
        val q = case.int("quality")
        DynamicTest.dynamicTest("$name q$q") {
            val pillow = JpegTables.readHeader(Golden.bytes(case["file"] as String)).let { it to Golden.bytes(case["file"] as String) }
            val mineBytes = codec.encode(Golden.image(name), q)
            val mine = JpegTables.readHeader(mineBytes)
            val (ph, pb) = pillow
            assertTrue(mine.isBaseline, "baseline")
            assertEquals("4:2:0", mine.subsampling)
            assertEquals(ph.subsampling, mine.subsampling)
            assertEquals(ph.qTables.keys, mine.qTables.keys)
            for ((id, t) in ph.qTables) assertArrayEquals(t, mine.qTables[id], "quantisation table $id")
            assertArrayEquals(JpegTables.luminance(q), mine.qTables[0])
            assertArrayEquals(JpegTables.chrominance(q), mine.qTables[1])
            assertArrayEquals(pb.copyOfRange(ph.scanStart, ph.scanEnd), mineBytes.copyOfRange(mine.scanStart, mine.scanEnd), "scan data")
        }
    }

    /** Decoder: the JDK decoding Pillow's file gives Pillow's pixels. */
    @TestFactory
    fun `decoder output matches Pillow's decode`() = Golden.list("jpeg").map { case ->
        val name = case["image"] as String
        val q = case.int("quality")
        DynamicTest.dynamicTest("$name q$q") {
            val decoded = codec.decode(Golden.bytes(case["file"] as String))
            assertEquals(case["decoded_sha256"], sha256Hex(decoded.data))
        }
    }

    /** The full round trip, and so ELA computed with the JDK codec, equals Python's. */
    @TestFactory
    fun `ELA with the JDK codec equals ela_error_level`() = Golden.list("ela").map { case ->
        val name = case["image"] as String
        val q = case.int("quality")
        DynamicTest.dynamicTest("$name q$q scale ${case["scale"]}") {
            val img = Golden.image(name)
            val scale = case["scale"].let { if (it == "auto") ElaScale.Auto else ElaScale.Fixed((it as Number).toDouble()) }
            val got = Ela.errorLevel(img, ElaParams(q, scale), codec)
            assertImagesEqual(Golden.rgb(case["file"] as String, img.width, img.height), got)
        }
    }

    @TestFactory
    fun `preprocessing with the JDK codec equals ela_Preprocessing_apply`() = Golden.list("preprocessing").map { case ->
        DynamicTest.dynamicTest("${case["image"]} ${case["config"]}") {
            val pre = ModelInfo.preprocessingFromJson(case["preprocessing"] as Map<String, Any?>)
            val got = Preprocessor.apply(pre, false, Golden.image(case["image"] as String), codec, case["sha256"] as String)
            assertImagesEqual(Golden.rgb(case["file"] as String, pre.inputSize, pre.inputSize), got)
        }
    }

    @Test
    fun `tiny and odd-sized images survive the round trip`() {
        for ((w, h) in listOf(1 to 1, 1 to 17, 17 to 1, 15 to 9)) {
            val img = RgbImage(w, h, ByteArray(w * h * 3) { (it * 37).toByte() })
            val rt = codec.roundTrip(img, 90)
            assertEquals(w, rt.width)
            assertEquals(h, rt.height)
        }
    }
}
