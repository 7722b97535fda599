package fakelens.core

/**
 * An 8-bit RGB image: [data] holds width*height*3 bytes, row-major, interleaved R,G,B — the
 * layout of a numpy (H, W, 3) uint8 array and of the model's input tensor.
 */
class RgbImage(val width: Int, val height: Int, val data: ByteArray) {
    init {
        require(width > 0 && height > 0) { "image must be non-empty, got ${width}x$height" }
        require(data.size == width * height * 3) { "expected ${width * height * 3} RGB bytes for ${width}x$height, got ${data.size}" }
    }

    constructor(width: Int, height: Int) : this(width, height, ByteArray(width * height * 3))

    /** Channel value 0..255 at (x, y, c). */
    operator fun get(x: Int, y: Int, c: Int): Int = data[(y * width + x) * 3 + c].toInt() and 0xFF

    /** Pixels as opaque ARGB ints (Android's Bitmap.setPixels / BufferedImage TYPE_INT_RGB layout). */
    fun toArgb(): IntArray {
        val out = IntArray(width * height)
        for (p in out.indices) {
            val r = data[3 * p].toInt() and 0xFF
            val g = data[3 * p + 1].toInt() and 0xFF
            val b = data[3 * p + 2].toInt() and 0xFF
            out[p] = (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        return out
    }

    /** Model input as floats 0..255 (float models rescale internally: no normalisation here). */
    fun toFloatArray(): FloatArray = FloatArray(data.size) { (data[it].toInt() and 0xFF).toFloat() }

    override fun equals(other: Any?): Boolean =
        other is RgbImage && other.width == width && other.height == height && other.data.contentEquals(data)

    override fun hashCode(): Int = 31 * (31 * width + height) + data.contentHashCode()

    override fun toString() = "RgbImage(${width}x$height)"

    companion object {
        /**
         * From ARGB ints (Bitmap.getPixels, un-premultiplied). Pixels that are not opaque are
         * composited on white with Pillow's integer arithmetic (ela.to_rgb does the same), so a
         * transparent PNG gives the same RGB as in training.
         */
        fun fromArgb(width: Int, height: Int, argb: IntArray): RgbImage {
            require(argb.size == width * height) { "expected ${width * height} pixels, got ${argb.size}" }
            val out = ByteArray(argb.size * 3)
            for (p in argb.indices) {
                val v = argb[p]
                val a = v ushr 24
                var r = (v shr 16) and 0xFF
                var g = (v shr 8) and 0xFF
                var b = v and 0xFF
                if (a != 0xFF) {
                    r = overWhite(r, a)
                    g = overWhite(g, a)
                    b = overWhite(b, a)
                }
                out[3 * p] = r.toByte()
                out[3 * p + 1] = g.toByte()
                out[3 * p + 2] = b.toByte()
            }
            return RgbImage(width, height, out)
        }

        /** From interleaved RGBA bytes (e.g. a decoded PNG with alpha). */
        fun fromRgba(width: Int, height: Int, rgba: ByteArray): RgbImage {
            require(rgba.size == width * height * 4) { "expected ${width * height * 4} RGBA bytes, got ${rgba.size}" }
            val argb = IntArray(width * height) {
                val r = rgba[4 * it].toInt() and 0xFF
                val g = rgba[4 * it + 1].toInt() and 0xFF
                val b = rgba[4 * it + 2].toInt() and 0xFF
                val a = rgba[4 * it + 3].toInt() and 0xFF
                (a shl 24) or (r shl 16) or (g shl 8) or b
            }
            return fromArgb(width, height, argb)
        }

        /**
         * One channel of Pillow's Image.alpha_composite(opaque white, src): fixed point with 7
         * fractional bits and a rounded division by 255. With an opaque white background the
         * general formula reduces to round((c*a + 255*(255-a)) / 255) computed this way.
         */
        internal fun overWhite(c: Int, a: Int): Int {
            if (a == 0) return 255
            val precision = 7
            val coef1 = a shl precision // a*255*255*2^7 / (255*255)
            val coef2 = (255 shl precision) - coef1
            val tmp = c * coef1 + 255 * coef2 + (0x80 shl precision)
            return (((tmp shr 8) + tmp) shr 8) shr precision
        }
    }
}
