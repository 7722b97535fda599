package fakelens.core

/**
 * EXIF orientation (tag 0x0112, values 1..8) applied the way Pillow's ImageOps.exif_transpose
 * does, so a phone photo stored sideways reaches the model upright, as in training.
 * Android's BitmapFactory ignores the tag; read it with androidx.exifinterface and call [apply].
 */
object Orientation {
    fun apply(img: RgbImage, exifOrientation: Int): RgbImage {
        if (exifOrientation !in 2..8) return img // 1 = upright; 0 / unknown = leave as stored
        val w = img.width
        val h = img.height
        val swap = exifOrientation >= 5
        val ow = if (swap) h else w
        val oh = if (swap) w else h
        val out = ByteArray(img.data.size)
        for (y in 0 until oh) for (x in 0 until ow) {
            val (sx, sy) = when (exifOrientation) {
                2 -> (w - 1 - x) to y // mirror left-right
                3 -> (w - 1 - x) to (h - 1 - y) // rotate 180
                4 -> x to (h - 1 - y) // mirror top-bottom
                5 -> y to x // transpose
                6 -> y to (h - 1 - x) // rotate 90 clockwise
                7 -> (w - 1 - y) to (h - 1 - x) // transverse
                else -> (w - 1 - y) to x // 8: rotate 90 counter-clockwise
            }
            System.arraycopy(img.data, (sy * w + sx) * 3, out, (y * ow + x) * 3, 3)
        }
        return RgbImage(ow, oh, out)
    }
}
