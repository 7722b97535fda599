package fakelens.demo

import android.util.Log
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import fakelens.core.Ela
import fakelens.core.ElaParams
import fakelens.core.ElaScale
import fakelens.core.JpegCodec
import fakelens.core.JpegTables
import fakelens.core.Json
import fakelens.core.Resize
import fakelens.core.RgbImage
import fakelens.core.sha256Hex
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import org.junit.runner.RunWith

/**
 * On-device comparison with Pillow, using the golden vectors from
 * `python core/make_golden.py core/build/golden` (packaged as androidTest assets; the tests are
 * skipped when they are absent). The pure-Kotlin math must match exactly; the phone's JPEG codec
 * is measured and logged (tag FakeLensParity) — pass `-e strict true` to require exactness.
 */
@RunWith(AndroidJUnit4::class)
@Suppress("UNCHECKED_CAST")
class PillowParityTest {
    private val assets = InstrumentationRegistry.getInstrumentation().context.assets
    private val strict = InstrumentationRegistry.getArguments().getString("strict") == "true"
    private val codec = AndroidJpegCodec()

    private val manifest: Map<String, Any?>? by lazy {
        runCatching { Json.parse(assets.open("manifest.json").use { it.readBytes() }.toString(Charsets.UTF_8)) as Map<String, Any?> }.getOrNull()
    }

    private fun list(key: String) = manifest!![key] as List<Map<String, Any?>>
    private fun bytes(rel: String) = assets.open(rel).use { it.readBytes() }
    private fun Map<String, Any?>.int(k: String) = (this[k] as Number).toInt()

    private val images by lazy {
        list("images").associate { it["name"] as String to RgbImage(it.int("width"), it.int("height"), bytes(it["file"] as String)) }
    }

    private val pillowRoundTrips by lazy {
        list("roundtrips").associateBy { "${it["input_sha256"]}_q${it.int("quality")}" }
    }

    private fun pillowRoundTrip(img: RgbImage, q: Int): RgbImage {
        val e = pillowRoundTrips.getValue("${sha256Hex(img.data)}_q$q")
        return RgbImage(img.width, img.height, bytes(e["file"] as String))
    }

    private val replay = object : JpegCodec {
        override fun encode(image: RgbImage, quality: Int) = throw UnsupportedOperationException()
        override fun decode(jpeg: ByteArray) = throw UnsupportedOperationException()
        override fun roundTrip(image: RgbImage, quality: Int) = pillowRoundTrip(image, quality)
    }

    private fun haveGolden() = assumeTrue("no golden vectors packaged (run make_golden.py into core/build/golden)", manifest != null)

    private fun stats(a: RgbImage, b: RgbImage): Pair<Int, Double> {
        var max = 0
        var sum = 0L
        for (i in a.data.indices) {
            val d = kotlin.math.abs((a.data[i].toInt() and 0xFF) - (b.data[i].toInt() and 0xFF))
            if (d > max) max = d
            sum += d
        }
        return max to sum.toDouble() / a.data.size
    }

    @Test
    fun elaAndResizeMathIsExact() {
        haveGolden()
        for (c in list("ela")) {
            val img = images.getValue(c["image"] as String)
            val scale = if (c["scale"] == "auto") ElaScale.Auto else ElaScale.Fixed((c["scale"] as Number).toDouble())
            val got = Ela.errorLevel(img, ElaParams(c.int("quality"), scale), replay)
            assertArrayEquals("${c["file"]}", bytes(c["file"] as String), got.data)
        }
        for (c in list("resize")) {
            val got = Resize.bilinear(images.getValue(c["image"] as String), c.int("width"), c.int("height"))
            assertArrayEquals("${c["file"]}", bytes(c["file"] as String), got.data)
        }
    }

    @Test
    fun bitmapCompressUsesLibjpegTablesAnd420() {
        haveGolden()
        var sameScan = 0
        val cases = list("jpeg")
        for (c in cases) {
            val q = c.int("quality")
            val mine = codec.encode(images.getValue(c["image"] as String), q)
            val h = JpegTables.readHeader(mine)
            assertTrue("baseline", h.isBaseline)
            assertEquals("4:2:0", h.subsampling)
            assertArrayEquals("luminance table q$q", JpegTables.luminance(q), h.qTables[0])
            assertArrayEquals("chrominance table q$q", JpegTables.chrominance(q), h.qTables[1])
            val pil = bytes(c["file"] as String)
            val ph = JpegTables.readHeader(pil)
            if (pil.copyOfRange(ph.scanStart, ph.scanEnd).contentEquals(mine.copyOfRange(h.scanStart, h.scanEnd))) sameScan++
        }
        // Skia may use optimised Huffman tables: different bytes can still hold the same coefficients.
        Log.i(TAG, "Bitmap.compress: entropy-coded data identical to Pillow's in $sameScan of ${cases.size} files")
    }

    @Test
    fun jpegCodecAgainstPillow() {
        haveGolden()
        var worstDecode = 0
        var worstRoundTrip = 0
        var worstEla = 0
        for (c in list("jpeg")) {
            val img = images.getValue(c["image"] as String)
            val q = c.int("quality")
            val pillow = pillowRoundTrip(img, q)
            val (dMax, dMean) = stats(codec.decode(bytes(c["file"] as String)), pillow)
            val (rMax, rMean) = stats(codec.roundTrip(img, q), pillow)
            val (eMax, eMean) = stats(Ela.errorLevel(img, ElaParams(q), codec), Ela.errorLevel(img, ElaParams(q), replay))
            Log.i(TAG, "${c["image"]} q$q: decode max $dMax mean %.4f | round trip max $rMax mean %.4f | ELA(auto) max $eMax mean %.4f".format(dMean, rMean, eMean))
            worstDecode = maxOf(worstDecode, dMax)
            worstRoundTrip = maxOf(worstRoundTrip, rMax)
            worstEla = maxOf(worstEla, eMax)
        }
        Log.i(TAG, "worst: BitmapFactory decode $worstDecode, Bitmap.compress+decode round trip $worstRoundTrip, ELA map $worstEla")
        if (strict) {
            assertEquals("BitmapFactory vs Pillow decode", 0, worstDecode)
            assertEquals("round trip vs Pillow", 0, worstRoundTrip)
        }
    }

    companion object {
        const val TAG = "FakeLensParity"
    }
}
