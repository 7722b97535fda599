package fakelens.core

/**
 * A JPEG encoder + decoder pair. ELA compares an image with its JPEG re-save, so how closely an
 * implementation matches Pillow (libjpeg-turbo: baseline, 4:2:0, IJG tables scaled by quality,
 * islow DCT, fancy upsampling on decode) decides how closely the ELA map matches training.
 */
interface JpegCodec {
    fun encode(image: RgbImage, quality: Int): ByteArray
    fun decode(jpeg: ByteArray): RgbImage

    /** Encode at [quality] and decode again (ela.jpeg_roundtrip). */
    fun roundTrip(image: RgbImage, quality: Int): RgbImage {
        val out = decode(encode(image, quality))
        check(out.width == image.width && out.height == image.height) {
            "JPEG round trip changed the size: ${image.width}x${image.height} -> ${out.width}x${out.height}"
        }
        return out
    }
}

/** Error Level Analysis, the same integer arithmetic as ela.transform.error_level. */
object Ela {
    /** ELA map of [image]: |image − roundTrip(image, quality)| scaled per [params]. */
    fun errorLevel(image: RgbImage, params: ElaParams, codec: JpegCodec): RgbImage =
        fromResaved(image, codec.roundTrip(image, params.quality), params.scale)

    /** The ELA arithmetic alone, given the re-saved pixels. */
    fun fromResaved(original: RgbImage, resaved: RgbImage, scale: ElaScale): RgbImage {
        require(original.width == resaved.width && original.height == resaved.height) {
            "re-saved image is ${resaved.width}x${resaved.height}, original ${original.width}x${original.height}"
        }
        val a = original.data
        val b = resaved.data
        val diff = IntArray(a.size)
        var peak = 0
        for (i in a.indices) {
            val d = kotlin.math.abs((a[i].toInt() and 0xFF) - (b[i].toInt() and 0xFF))
            diff[i] = d
            if (d > peak) peak = d
        }
        val out = ByteArray(a.size)
        when (scale) {
            is ElaScale.Auto -> if (peak > 0) {
                // round(diff * 255 / peak) with the half-up rule Python uses: (d*255 + peak/2) / peak
                val half = peak / 2
                for (i in diff.indices) out[i] = ((diff[i] * 255 + half) / peak).toByte()
            } // peak == 0: the re-save is identical, the map is all zeros
            is ElaScale.Fixed -> {
                val s = scale.factor
                for (i in diff.indices) {
                    val v = Math.floor(diff[i] * s + 0.5)
                    out[i] = (if (v >= 255.0) 255 else v.toInt()).toByte()
                }
            }
        }
        return RgbImage(original.width, original.height, out)
    }

    /** Peak difference between two images (0..255), for diagnostics and tests. */
    fun maxAbsDiff(a: RgbImage, b: RgbImage): Int {
        require(a.width == b.width && a.height == b.height)
        var m = 0
        for (i in a.data.indices) {
            val d = kotlin.math.abs((a.data[i].toInt() and 0xFF) - (b.data[i].toInt() and 0xFF))
            if (d > m) m = d
        }
        return m
    }
}
