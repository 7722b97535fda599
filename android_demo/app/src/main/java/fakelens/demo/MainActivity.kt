package fakelens.demo

import android.net.Uri
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.core.content.FileProvider
import androidx.core.view.ViewCompat
import androidx.core.view.WindowInsetsCompat
import androidx.lifecycle.lifecycleScope
import fakelens.core.ElaScale
import fakelens.core.ModelInfo
import fakelens.demo.databinding.ActivityMainBinding
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File
import java.util.Locale

/**
 * Pick a photo (gallery or camera) → preprocess exactly as the model's metadata says (on-device
 * ELA unless the model computes it in-graph) → run the model → show label, score and latency.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding
    private var model: FakeLensModel? = null
    private var lastImage: LoadedImage? = null
    private val codec = AndroidJpegCodec()
    private var pendingCapture: Uri? = null

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) analyse(uri)
    }

    private val takePhoto = registerForActivityResult(ActivityResultContracts.TakePicture()) { saved ->
        val uri = pendingCapture
        if (saved && uri != null) analyse(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)
        ViewCompat.setOnApplyWindowInsetsListener(binding.root) { v, insets ->
            val bars = insets.getInsets(WindowInsetsCompat.Type.systemBars())
            v.setPadding(bars.left, bars.top, bars.right, bars.bottom)
            insets
        }

        binding.galleryButton.setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        binding.cameraButton.setOnClickListener { capture() }

        val models = FakeLensModel.available(this)
        if (models.isEmpty()) {
            binding.modelInfo.text = getString(R.string.no_model)
            binding.galleryButton.isEnabled = false
            binding.cameraButton.isEnabled = false
            return
        }
        binding.modelSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models)
        binding.modelSpinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = selectModel(models[position])
            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
    }

    override fun onDestroy() {
        model?.close()
        super.onDestroy()
    }

    private fun selectModel(assetName: String) {
        if (model?.assetName == assetName) return
        setBusy(true)
        lifecycleScope.launch {
            val loaded = withContext(Dispatchers.IO) { runCatching { FakeLensModel.load(this@MainActivity, assetName) } }
            model?.close()
            model = loaded.getOrNull()
            binding.modelInfo.text = loaded.fold({ describe(it.info) }, { "Cannot load $assetName: ${it.message}" })
            setBusy(false)
            val img = lastImage
            if (img != null) run(img) else binding.verdict.text = getString(R.string.no_image) // re-score with the new model

        }
    }

    private fun capture() {
        val dir = File(cacheDir, "captures").apply { mkdirs() }
        val file = File(dir, "capture.jpg")
        val uri = FileProvider.getUriForFile(this, "$packageName.fileprovider", file)
        pendingCapture = uri
        takePhoto.launch(uri)
    }

    private fun analyse(uri: Uri) {
        setBusy(true)
        lifecycleScope.launch {
            val loaded = withContext(Dispatchers.IO) { runCatching { ImageLoader.load(contentResolver, uri) } }
            loaded.onSuccess { img ->
                lastImage = img
                binding.photo.setImageBitmap(Pixels.toBitmap(img.image))
                run(img)
            }.onFailure {
                binding.verdict.text = "Cannot read the image"
                binding.details.text = it.message ?: it.toString()
                setBusy(false)
            }
        }
    }

    private fun run(img: LoadedImage) {
        val m = model
        if (m == null) {
            setBusy(false)
            binding.verdict.text = getString(R.string.no_model)
            return
        }
        setBusy(true)
        lifecycleScope.launch {
            val result = withContext(Dispatchers.Default) {
                try {
                    Result.success(m.classify(img.image, img.sha256, codec))
                } catch (e: OutOfMemoryError) {
                    Result.failure(IllegalStateException("not enough memory for a ${img.image.width}x${img.image.height} image"))
                } catch (e: Exception) {
                    Result.failure(e)
                }
            }
            result.onSuccess { c ->
                val p = c.prediction
                binding.verdict.text = String.format(Locale.US, "%s%s  (p_fake %.3f)", p.label.uppercase(Locale.US),
                    if (p.uncertain == true) ", UNCERTAIN" else "", p.pFake)
                binding.details.text = String.format(
                    Locale.US,
                    "p_real %.4f  p_fake %.4f  threshold %.2f\npreprocess %.1f ms  inference %.1f ms\nimage %dx%d, %d bytes, EXIF orientation %d",
                    p.pReal, p.pFake, p.threshold, c.preprocessMs, c.inferenceMs,
                    img.image.width, img.image.height, img.fileBytes, img.exifOrientation,
                )
                binding.modelInput.setImageBitmap(Pixels.toBitmap(c.modelInput))
            }.onFailure {
                binding.verdict.text = "Analysis failed"
                binding.details.text = it.message ?: it.toString()
            }
            setBusy(false)
        }
    }

    private fun setBusy(busy: Boolean) {
        val ready = !busy && model != null
        binding.galleryButton.isEnabled = ready
        binding.cameraButton.isEnabled = ready
        binding.modelSpinner.isEnabled = !busy
        if (busy) binding.verdict.text = getString(R.string.working)
    }

    private fun describe(info: ModelInfo): String {
        val pre = info.preprocessing
        val ela = pre.ela
        val elaText = when {
            ela == null -> "no ELA (RGB model)"
            info.elaInGraph -> "ELA in the model graph (q${ela.quality})"
            else -> "on-device ELA q${ela.quality}, scale ${if (ela.scale is ElaScale.Auto) "auto" else (ela.scale as ElaScale.Fixed).factor}, ${ela.resolution.json} resolution"
        }
        val fc = pre.formatControl?.let { ", format control q${it.qualityMin}..${it.qualityMax}" } ?: ""
        val baked = info.bakedThreshold?.let { " (threshold $it baked into the scores)" } ?: ""
        return "${info.modelName} (${info.variant}) · input ${pre.inputSize}px · $elaText$fc · labels ${info.labels} · threshold ${info.threshold}$baked"
    }
}
