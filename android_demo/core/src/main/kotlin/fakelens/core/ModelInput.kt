package fakelens.core

/**
 * The preprocessed image in the model's input tensor type. Values are pixel values 0..255: the
 * model rescales internally, so nothing is normalised here.
 */
object ModelInput {
    /** float32 input: 0f..255f, NHWC order (the order of [RgbImage.data]). */
    fun float32(img: RgbImage): FloatArray = img.toFloatArray()

    /**
     * uint8 / int8 input quantised with the tensor's (scale, zeroPoint): q = round(v / scale) + zeroPoint,
     * clamped to the type's range. A uint8 input with scale 1 and zero point 0 (or no quantisation,
     * scale 0) is the pixel bytes themselves.
     */
    fun quantized(img: RgbImage, scale: Float, zeroPoint: Int, signed: Boolean): ByteArray {
        val lo = if (signed) -128 else 0
        val hi = if (signed) 127 else 255
        if (!signed && zeroPoint == 0 && (scale == 0f || scale == 1f)) return img.data.copyOf()
        val s = if (scale == 0f) 1f else scale
        return ByteArray(img.data.size) {
            val v = (img.data[it].toInt() and 0xFF) / s
            (Math.round(v) + zeroPoint).coerceIn(lo, hi).toByte()
        }
    }
}
