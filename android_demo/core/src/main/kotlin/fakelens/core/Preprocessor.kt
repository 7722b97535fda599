package fakelens.core

/**
 * The image → model-input path of ela.Preprocessing.apply, plus what `ela_in_graph` changes.
 *
 * The JPEG codec is a parameter: on a phone it is Bitmap.compress + BitmapFactory; in the JVM
 * tests it is javax.imageio or a replay of Pillow's own round trips.
 */
class Preprocessor(private val info: ModelInfo, private val codec: JpegCodec) {
    private val pre = info.preprocessing

    /**
     * [image] (already 8-bit RGB, EXIF-oriented, alpha composited on white) → the
     * inputSize × inputSize RGB image the model takes (values 0..255, no normalisation).
     * [sha256Hex] is the sha256 of the image file's bytes; only the format-controlled protocol uses it.
     */
    fun apply(image: RgbImage, sha256Hex: String = ""): RgbImage = apply(pre, info.elaInGraph, image, codec, sha256Hex)

    companion object {
        fun apply(pre: Preprocessing, elaInGraph: Boolean, image: RgbImage, codec: JpegCodec, sha256Hex: String = ""): RgbImage {
            val size = pre.inputSize
            var img = image
            pre.formatControl?.let { fc ->
                require(sha256Hex.isNotEmpty()) { "the format-controlled protocol needs the file's content hash" }
                img = codec.roundTrip(Resize.square(img, size), fc.qualityFor(sha256Hex))
            }
            val ela = if (elaInGraph) null else pre.ela
            return when {
                ela == null -> Resize.square(img, size) // plain RGB, or the model computes ELA itself
                ela.resolution == ElaResolution.RESIZED -> Ela.errorLevel(Resize.square(img, size), ela, codec)
                else -> Resize.square(Ela.errorLevel(img, ela, codec), size)
            }
        }
    }
}
