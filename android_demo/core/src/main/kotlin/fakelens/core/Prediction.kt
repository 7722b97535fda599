package fakelens.core

/** The classifier's verdict on one image. */
data class Prediction(
    val pReal: Double,
    val pFake: Double,
    /** "fake" when pFake >= threshold, else "real" (the metadata's label strings). */
    val label: String,
    val isFake: Boolean,
    val threshold: Double,
    /** Whether pFake is inside the model's uncertain band ([ModelInfo.isUncertain]); null when it has none. */
    val uncertain: Boolean? = null,
)

/** Turning the model's output tensor into a [Prediction]. */
object Postprocess {
    /** Numerically stable softmax (for models that output logits). */
    fun softmax(logits: DoubleArray): DoubleArray {
        require(logits.isNotEmpty())
        val m = logits.max()
        val e = DoubleArray(logits.size) { Math.exp(logits[it] - m) }
        val s = e.sum()
        return DoubleArray(e.size) { e[it] / s }
    }

    /** real = (q − zeroPoint) × scale; [unsigned] for uint8 tensors, else int8. */
    fun dequantize(raw: ByteArray, scale: Double, zeroPoint: Int, unsigned: Boolean): DoubleArray {
        require(scale > 0.0) { "quantisation scale must be positive, got $scale" }
        return DoubleArray(raw.size) {
            val q = if (unsigned) raw[it].toInt() and 0xFF else raw[it].toInt()
            (q - zeroPoint) * scale
        }
    }

    /** Probabilities [p_real, p_fake] (in the metadata's label order) → decision. */
    fun decide(probs: DoubleArray, info: ModelInfo): Prediction =
        decide(probs, info.labels, info.threshold).let { it.copy(uncertain = info.isUncertain(it.pFake)) }

    fun decide(probs: DoubleArray, labels: List<String>, threshold: Double): Prediction {
        require(probs.size == labels.size) { "model output has ${probs.size} values, metadata names ${labels.size} labels" }
        val fakeIdx = labels.indexOf("fake").let { if (it >= 0) it else 1 }
        val pFake = probs[fakeIdx]
        val pReal = probs[1 - fakeIdx]
        val isFake = pFake >= threshold
        return Prediction(pReal, pFake, labels[if (isFake) fakeIdx else 1 - fakeIdx], isFake, threshold)
    }

    fun fromFloat(output: FloatArray, info: ModelInfo, logits: Boolean = false): Prediction {
        val v = DoubleArray(output.size) { output[it].toDouble() }
        return decide(if (logits) softmax(v) else v, info)
    }

    fun fromQuantized(output: ByteArray, scale: Double, zeroPoint: Int, unsigned: Boolean, info: ModelInfo): Prediction =
        decide(dequantize(output, scale, zeroPoint, unsigned), info)
}
