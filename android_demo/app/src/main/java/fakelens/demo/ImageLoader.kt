package fakelens.demo

import android.content.ContentResolver
import android.graphics.BitmapFactory
import android.net.Uri
import androidx.exifinterface.media.ExifInterface
import fakelens.core.Orientation
import fakelens.core.RgbImage
import fakelens.core.sha256Hex
import java.io.ByteArrayInputStream
import java.io.IOException

/** A picked photo, decoded the way ela.read_image does it. */
class LoadedImage(val image: RgbImage, val sha256: String, val fileBytes: Int, val exifOrientation: Int)

object ImageLoader {
    /**
     * Reads the file once (its sha256 keys the format-controlled protocol), decodes it to 8-bit
     * RGB, composites alpha on white and applies the EXIF orientation like Pillow's exif_transpose.
     */
    fun load(resolver: ContentResolver, uri: Uri): LoadedImage {
        val bytes = resolver.openInputStream(uri)?.use { it.readBytes() } ?: throw IOException("cannot open $uri")
        if (bytes.isEmpty()) throw IOException("the file is empty")
        val orientation = try {
            ExifInterface(ByteArrayInputStream(bytes)).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        } catch (e: IOException) {
            ExifInterface.ORIENTATION_NORMAL
        }
        val bitmap = BitmapFactory.decodeByteArray(bytes, 0, bytes.size, Pixels.decodeOptions())
            ?: throw IOException("not an image Android can decode")
        val rgb = try { Pixels.toRgb(bitmap) } finally { bitmap.recycle() }
        return LoadedImage(Orientation.apply(rgb, orientation), sha256Hex(bytes), bytes.size, orientation)
    }
}
