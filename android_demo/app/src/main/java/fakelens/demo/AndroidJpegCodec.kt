package fakelens.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import fakelens.core.JpegCodec
import fakelens.core.RgbImage
import java.io.ByteArrayOutputStream
import java.io.IOException

/**
 * The phone's JPEG re-save for ELA: Bitmap.compress (Skia's encoder on libjpeg-turbo, with
 * libjpeg's quality tables and 4:2:0) and BitmapFactory (Skia's decoder on libjpeg-turbo).
 * How close this gets to Pillow's round trip is device-dependent: see README.md and the
 * instrumented PillowParityTest.
 */
class AndroidJpegCodec : JpegCodec {
    override fun encode(image: RgbImage, quality: Int): ByteArray {
        val bitmap = Pixels.toBitmap(image)
        try {
            val out = ByteArrayOutputStream(image.width * image.height / 2)
            if (!bitmap.compress(Bitmap.CompressFormat.JPEG, quality, out)) throw IOException("Bitmap.compress(JPEG, $quality) failed")
            return out.toByteArray()
        } finally {
            bitmap.recycle()
        }
    }

    override fun decode(jpeg: ByteArray): RgbImage {
        val bitmap = BitmapFactory.decodeByteArray(jpeg, 0, jpeg.size, Pixels.decodeOptions())
            ?: throw IOException("BitmapFactory could not decode the re-saved JPEG")
        try {
            return Pixels.toRgb(bitmap)
        } finally {
            bitmap.recycle()
        }
    }
}
