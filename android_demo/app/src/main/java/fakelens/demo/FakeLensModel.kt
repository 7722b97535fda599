package fakelens.demo

import android.content.Context
import android.os.SystemClock
import fakelens.core.AssociatedFiles
import fakelens.core.JpegCodec
import fakelens.core.ModelInfo
import fakelens.core.ModelInput
import fakelens.core.Postprocess
import fakelens.core.Prediction
import fakelens.core.Preprocessor
import fakelens.core.RgbImage
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/** One classification: the verdict, the image the model saw, and where the time went. */
class Classification(
    val prediction: Prediction,
    val modelInput: RgbImage,
    val preprocessMs: Double,
    val inferenceMs: Double,
)

/**
 * A FakeLens .tflite from assets/ with the metadata it carries (fakelens.json in the zip appended
 * to the flatbuffer), run with the LiteRT Interpreter.
 */
class FakeLensModel private constructor(
    val assetName: String,
    val info: ModelInfo,
    private val interpreter: Interpreter,
) : Closeable {

    private val inputType: DataType
    private val outputType: DataType

    init {
        val input = interpreter.getInputTensor(0)
        val shape = input.shape()
        val size = info.preprocessing.inputSize
        if (!shape.contentEquals(intArrayOf(1, size, size, 3))) {
            throw IOException("$assetName: input tensor is ${shape.contentToString()}, metadata says [1, $size, $size, 3]")
        }
        inputType = input.dataType()
        outputType = interpreter.getOutputTensor(0).dataType()
        if (inputType !in SUPPORTED || outputType !in SUPPORTED) {
            throw IOException("$assetName: unsupported tensor types (input $inputType, output $outputType)")
        }
    }

    /** [image]: upright 8-bit RGB; [sha256]: of the image file (format-controlled models only). */
    fun classify(image: RgbImage, sha256: String, codec: JpegCodec): Classification {
        val t0 = SystemClock.elapsedRealtimeNanos()
        val x = Preprocessor(info, codec).apply(image, sha256)
        val inputBuffer = encodeInput(x)
        val output = interpreter.getOutputTensor(0)
        val outBuffer = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder())
        val t1 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(inputBuffer, outBuffer)
        val t2 = SystemClock.elapsedRealtimeNanos()
        outBuffer.rewind()
        val prediction = when (outputType) {
            DataType.FLOAT32 -> {
                val values = FloatArray(output.numElements())
                outBuffer.asFloatBuffer().get(values)
                Postprocess.fromFloat(values, info)
            }
            else -> {
                val raw = ByteArray(output.numElements())
                outBuffer.get(raw)
                val q = output.quantizationParams()
                Postprocess.fromQuantized(raw, q.scale.toDouble(), q.zeroPoint, unsigned = outputType == DataType.UINT8, info = info)
            }
        }
        return Classification(prediction, x, (t1 - t0) / 1e6, (t2 - t1) / 1e6)
    }

    private fun encodeInput(x: RgbImage): ByteBuffer {
        val tensor = interpreter.getInputTensor(0)
        return when (inputType) {
            DataType.FLOAT32 -> ByteBuffer.allocateDirect(4 * x.data.size).order(ByteOrder.nativeOrder()).also {
                it.asFloatBuffer().put(ModelInput.float32(x))
            }
            else -> {
                val q = tensor.quantizationParams()
                val bytes = ModelInput.quantized(x, q.scale, q.zeroPoint, signed = inputType == DataType.INT8)
                ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).also { it.put(bytes); it.rewind() }
            }
        }
    }

    override fun close() = interpreter.close()

    companion object {
        private val SUPPORTED = setOf(DataType.FLOAT32, DataType.UINT8, DataType.INT8)

        /** The .tflite files packaged in assets/, sorted. */
        fun available(context: Context): List<String> =
            context.assets.list("")?.filter { it.endsWith(".tflite") }?.sorted().orEmpty()

        fun load(context: Context, assetName: String, threads: Int = 2): FakeLensModel {
            val bytes = context.assets.open(assetName).use { it.readBytes() }
            val info = AssociatedFiles.modelInfo(bytes)
            val model: ByteBuffer = try {
                // stored uncompressed (noCompress "tflite" in build.gradle.kts): map it in place
                context.assets.openFd(assetName).use { fd ->
                    FileInputStream(fd.fileDescriptor).channel
                        .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            } catch (e: IOException) {
                ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).also { it.put(bytes); it.rewind() }
            }
            val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads))
            try {
                return FakeLensModel(assetName, info, interpreter)
            } catch (e: Exception) {
                interpreter.close()
                throw e
            }
        }
    }
}
