package fakelens.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import fakelens.core.RgbImage
import java.nio.ByteBuffer

/** Moving pixels between Android Bitmaps and the core's [RgbImage]. */
object Pixels {
    /**
     * Decoder options: 8-bit RGBA, not premultiplied (so alpha compositing in the core sees the
     * stored colours, as Pillow does). No colour-space conversion is requested: like Pillow, the
     * app uses the values as encoded.
     */
    fun decodeOptions() = BitmapFactory.Options().apply {
        inPreferredConfig = Bitmap.Config.ARGB_8888
        inPremultiplied = false
    }

    /** Bitmap → RGB. Reads the raw stored bytes (getPixels would convert to sRGB and premultiply). */
    fun toRgb(bitmap: Bitmap): RgbImage {
        val bmp = if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
        val rgba = ByteBuffer.allocate(bmp.byteCount)
        bmp.copyPixelsToBuffer(rgba) // ARGB_8888 is laid out R, G, B, A in memory
        val w = bmp.width
        val h = bmp.height
        val stride = bmp.rowBytes
        val packed = if (stride == w * 4) rgba.array() else ByteArray(w * h * 4).also { out ->
            for (y in 0 until h) System.arraycopy(rgba.array(), y * stride, out, y * w * 4, w * 4)
        }
        val img = when {
            !bmp.hasAlpha() -> dropAlpha(w, h, packed) { c, _ -> c }
            !bmp.isPremultiplied -> RgbImage.fromRgba(w, h, packed) // Pillow's composite on white, exactly
            // premultiplied storage (only after a config conversion): c*a/255 is stored, add the white part
            else -> dropAlpha(w, h, packed) { c, a -> minOf(255, c + 255 - a) }
        }
        if (bmp !== bitmap) bmp.recycle()
        return img
    }

    private inline fun dropAlpha(w: Int, h: Int, rgba: ByteArray, f: (Int, Int) -> Int): RgbImage {
        val rgb = ByteArray(w * h * 3)
        for (p in 0 until w * h) {
            val a = rgba[4 * p + 3].toInt() and 0xFF
            for (c in 0 until 3) rgb[3 * p + c] = f(rgba[4 * p + c].toInt() and 0xFF, a).toByte()
        }
        return RgbImage(w, h, rgb)
    }

    /** RGB → an opaque ARGB_8888 Bitmap (for display and for Bitmap.compress). */
    fun toBitmap(img: RgbImage): Bitmap = Bitmap.createBitmap(img.toArgb(), img.width, img.height, Bitmap.Config.ARGB_8888)
}
