package fakelens.core

/**
 * Bilinear resizing that gives the same bytes as Pillow's `Image.resize(size, Image.BILINEAR)`,
 * the resampler the Python preprocessing uses.
 *
 * Pillow's "bilinear" is not 2x2 interpolation: it is a separable triangle filter whose support
 * grows with the reduction factor (so downscaling averages every source pixel), computed in two
 * 8-bit passes — horizontal, then vertical — with 22-bit fixed-point weights. Android's
 * Bitmap.createScaledBitmap and most GPU scalers differ from it, hence this implementation.
 */
object Resize {
    private const val PRECISION_BITS = 32 - 8 - 2
    private const val SUPPORT = 1.0 // triangle filter

    fun bilinear(src: RgbImage, width: Int, height: Int): RgbImage {
        require(width > 0 && height > 0) { "target size must be positive, got ${width}x$height" }
        if (width == src.width && height == src.height) return RgbImage(width, height, src.data.copyOf())
        var img = src
        if (width != src.width) img = horizontal(img, width)
        if (height != src.height) img = vertical(img, height)
        return img
    }

    fun square(src: RgbImage, size: Int): RgbImage = bilinear(src, size, size)

    /** Filter taps of one output position: first source index and fixed-point weights. */
    private class Taps(val start: IntArray, val count: IntArray, val weights: IntArray, val kSize: Int)

    private fun triangle(x: Double): Double {
        val ax = if (x < 0.0) -x else x
        return if (ax < 1.0) 1.0 - ax else 0.0
    }

    private fun taps(inSize: Int, outSize: Int): Taps {
        val scale = inSize.toDouble() / outSize
        val filterScale = if (scale < 1.0) 1.0 else scale
        val support = SUPPORT * filterScale
        val kSize = Math.ceil(support).toInt() * 2 + 1
        val start = IntArray(outSize)
        val count = IntArray(outSize)
        val weights = IntArray(outSize * kSize)
        val k = DoubleArray(kSize)
        val inv = 1.0 / filterScale
        for (xx in 0 until outSize) {
            val center = (xx + 0.5) * scale
            val xmin = maxOf(0, (center - support + 0.5).toInt())
            val xmax = minOf(inSize, (center + support + 0.5).toInt()) - xmin
            var sum = 0.0
            for (x in 0 until xmax) {
                val w = triangle((x + xmin - center + 0.5) * inv)
                k[x] = w
                sum += w
            }
            for (x in 0 until xmax) {
                val w = if (sum != 0.0) k[x] / sum else k[x]
                val f = w * (1 shl PRECISION_BITS)
                weights[xx * kSize + x] = if (w < 0) (-0.5 + f).toInt() else (0.5 + f).toInt()
            }
            start[xx] = xmin
            count[xx] = maxOf(0, xmax)
        }
        return Taps(start, count, weights, kSize)
    }

    private fun clip8(v: Int): Int = when {
        v >= (1 shl PRECISION_BITS shl 8) -> 255
        v <= 0 -> 0
        else -> v shr PRECISION_BITS
    }

    private fun horizontal(src: RgbImage, outW: Int): RgbImage {
        val t = taps(src.width, outW)
        val out = ByteArray(outW * src.height * 3)
        val s = src.data
        val half = 1 shl (PRECISION_BITS - 1)
        for (y in 0 until src.height) {
            val row = y * src.width * 3
            for (xx in 0 until outW) {
                val x0 = t.start[xx]
                val wBase = xx * t.kSize
                var r = half
                var g = half
                var b = half
                for (k in 0 until t.count[xx]) {
                    val w = t.weights[wBase + k]
                    val p = row + (x0 + k) * 3
                    r += (s[p].toInt() and 0xFF) * w
                    g += (s[p + 1].toInt() and 0xFF) * w
                    b += (s[p + 2].toInt() and 0xFF) * w
                }
                val o = (y * outW + xx) * 3
                out[o] = clip8(r).toByte()
                out[o + 1] = clip8(g).toByte()
                out[o + 2] = clip8(b).toByte()
            }
        }
        return RgbImage(outW, src.height, out)
    }

    private fun vertical(src: RgbImage, outH: Int): RgbImage {
        val t = taps(src.height, outH)
        val w3 = src.width * 3
        val out = ByteArray(w3 * outH)
        val s = src.data
        val half = 1 shl (PRECISION_BITS - 1)
        for (yy in 0 until outH) {
            val y0 = t.start[yy]
            val wBase = yy * t.kSize
            for (i in 0 until w3) {
                var acc = half
                for (k in 0 until t.count[yy]) {
                    acc += (s[(y0 + k) * w3 + i].toInt() and 0xFF) * t.weights[wBase + k]
                }
                out[yy * w3 + i] = clip8(acc).toByte()
            }
        }
        return RgbImage(src.width, outH, out)
    }
}
