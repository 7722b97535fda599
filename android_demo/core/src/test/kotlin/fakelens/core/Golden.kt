package fakelens.core

import java.io.File

/**
 * The golden vectors written by make_golden.py. The directory comes from the system property
 * `fakelens.golden` or the environment variable FAKELENS_GOLDEN (run_tests.sh sets both).
 */
@Suppress("UNCHECKED_CAST")
object Golden {
    val dir: File by lazy {
        val path = System.getProperty("fakelens.golden") ?: System.getenv("FAKELENS_GOLDEN")
            ?: error("golden vectors not found: set -Dfakelens.golden=DIR or FAKELENS_GOLDEN=DIR (make them with make_golden.py DIR)")
        File(path).also { require(File(it, "manifest.json").isFile) { "$it has no manifest.json — run make_golden.py $it" } }
    }

    val manifest: Map<String, Any?> by lazy { Json.parse(File(dir, "manifest.json").readText()) as Map<String, Any?> }

    fun list(key: String): List<Map<String, Any?>> = manifest[key] as List<Map<String, Any?>>

    fun bytes(rel: String): ByteArray = File(dir, rel).readBytes()

    fun rgb(rel: String, width: Int, height: Int) = RgbImage(width, height, bytes(rel))

    class Image(val name: String, val image: RgbImage)

    val images: Map<String, Image> by lazy {
        list("images").associate { e ->
            val name = e["name"] as String
            name to Image(name, rgb(e["file"] as String, e.int("width"), e.int("height")))
        }
    }

    fun image(name: String): RgbImage = images.getValue(name).image

    /** Replays Pillow's JPEG round trips recorded by make_golden.py (keyed by input pixels + quality). */
    object PillowReplayCodec : JpegCodec {
        private val table: Map<String, Map<String, Any?>> by lazy {
            list("roundtrips").associateBy { "${it["input_sha256"]}_q${it.int("quality")}" }
        }

        override fun encode(image: RgbImage, quality: Int): ByteArray = throw UnsupportedOperationException("replay only")
        override fun decode(jpeg: ByteArray): RgbImage = throw UnsupportedOperationException("replay only")

        override fun roundTrip(image: RgbImage, quality: Int): RgbImage {
            val key = "${sha256Hex(image.data)}_q$quality"
            val e = table[key] ?: throw AssertionError("no recorded Pillow round trip for this input at quality $quality")
            return rgb(e["file"] as String, image.width, image.height)
        }
    }

    fun Map<String, Any?>.int(key: String): Int = (this[key] as Number).toInt()
    fun Map<String, Any?>.double(key: String): Double = (this[key] as Number).toDouble()
}
