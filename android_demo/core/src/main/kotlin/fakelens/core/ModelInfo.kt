package fakelens.core

/** ELA scale: stretch each map so its peak is 255, or multiply by a fixed factor. */
sealed class ElaScale {
    object Auto : ElaScale() {
        override fun toString() = "auto"
    }

    data class Fixed(val factor: Double) : ElaScale() {
        init {
            if (!(factor > 0 && factor.isFinite())) throw ModelInfoException("ELA scale must be \"auto\" or a positive number, got $factor")
        }

        override fun toString() = factor.toString()
    }
}

/** Where ELA is computed relative to the resize to the model input (mirrors ela.ElaParams). */
enum class ElaResolution(val json: String) {
    /** ELA on the decoded image, then the map is resized to the model input. */
    FULL("full"),

    /** Resize to the model input first, then ELA at that size. */
    RESIZED("resized");

    companion object {
        fun fromJson(s: String): ElaResolution = values().firstOrNull { it.json == s }
            ?: throw ModelInfoException("ELA resolution must be one of ${values().map { it.json }}, got \"$s\"")
    }
}

data class ElaParams(
    val quality: Int = 90,
    val scale: ElaScale = ElaScale.Auto,
    val resolution: ElaResolution = ElaResolution.FULL,
) {
    init {
        if (quality !in 1..100) throw ModelInfoException("ELA quality must be an integer in 1..100, got $quality")
    }
}

/** The format-controlled protocol: resize to the input, re-encode as JPEG at a hash-chosen quality. */
data class FormatControl(val qualityMin: Int = 70, val qualityMax: Int = 95) {
    init {
        if (!(1 <= qualityMin && qualityMin <= qualityMax && qualityMax <= 100)) {
            throw ModelInfoException("format-control qualities must satisfy 1 <= min <= max <= 100, got $qualityMin..$qualityMax")
        }
    }

    /** Same rule as Python's FormatControl.quality_for: first 8 hex digits of the file's sha256. */
    fun qualityFor(sha256Hex: String): Int {
        require(sha256Hex.length >= 8) { "the format-controlled protocol needs the file's sha256 (hex)" }
        val span = qualityMax - qualityMin + 1
        return qualityMin + (sha256Hex.substring(0, 8).toLong(16) % span).toInt()
    }
}

data class Preprocessing(
    val inputSize: Int = 224,
    val ela: ElaParams? = null,
    val formatControl: FormatControl? = null,
    val resize: String = "bilinear",
) {
    init {
        if (inputSize < 32) throw ModelInfoException("input_size must be an integer >= 32, got $inputSize")
        if (resize != "bilinear") throw ModelInfoException("only bilinear resizing is supported, metadata asks for \"$resize\"")
    }

    companion object {
        const val SCHEMA_VERSION = 1
    }
}

/**
 * Everything `fakelens.json` tells the app about a model. Schema 2 (convert/metadata.py) names the
 * training run, its protocol and sources as fields; schema 1 kept them in the free-form `extra`, from
 * which they are read the way the Python reader does (`from_schema_1`).
 */
data class ModelInfo(
    val schemaVersion: Int,
    val modelName: String,
    val config: String,
    val variant: String,
    val labels: List<String>,
    val threshold: Double,
    val elaInGraph: Boolean,
    val preprocessing: Preprocessing,
    /** The threshold folded into the scores by `convert --bake_threshold` (then [threshold] is 0.5), or null. */
    val bakedThreshold: Double? = null,
    /** The training run folder's name, its data protocol, and the sources it trained on (sorted). */
    val run: String = "",
    val protocol: String = "",
    val trainSources: List<String> = emptyList(),
    /** [low, high]: a verdict with low < pFake < high is uncertain (close to the threshold, where the
     *  model's validation verdicts were least reliable; chosen by `convert --threshold_target`), or null. */
    val uncertainBand: List<Double>? = null,
) {
    init {
        if (labels.size != 2) throw ModelInfoException("expected 2 labels [real, fake], got $labels")
        if (!(threshold >= 0.0 && threshold <= 1.0)) throw ModelInfoException("threshold must be in [0, 1], got $threshold")
        if (bakedThreshold != null && !(bakedThreshold > 0.0 && bakedThreshold < 1.0)) {
            throw ModelInfoException("baked_threshold must lie strictly between 0 and 1, got $bakedThreshold")
        }
        if (uncertainBand != null && !(uncertainBand.size == 2 && uncertainBand[0] >= 0.0 &&
                uncertainBand[0] <= threshold && threshold <= uncertainBand[1] && uncertainBand[1] <= 1.0)) {
            throw ModelInfoException("uncertain_band must be [low, high] with 0 <= low <= threshold <= high <= 1, got $uncertainBand")
        }
    }

    /** Whether a verdict at [pFake] is uncertain; null when the model carries no band. */
    fun isUncertain(pFake: Double): Boolean? = uncertainBand?.let { pFake > it[0] && pFake < it[1] }

    /** ELA the app must compute itself (null when the model takes plain RGB or computes ELA in-graph). */
    val elaOnDevice: ElaParams? get() = if (elaInGraph) null else preprocessing.ela

    /** Index of the "fake" class in the output tensor (the second label unless named otherwise). */
    val fakeIndex: Int get() = labels.indexOf("fake").let { if (it >= 0) it else 1 }
    val realIndex: Int get() = 1 - fakeIndex

    companion object {
        const val SCHEMA_VERSION = 2
        val READABLE_SCHEMA_VERSIONS = setOf(1, SCHEMA_VERSION)

        fun parse(jsonText: String): ModelInfo {
            val root = try {
                Json.parse(jsonText)
            } catch (e: JsonException) {
                throw ModelInfoException("fakelens.json is not valid JSON: ${e.message}")
            }
            return fromJson(root.asObject("fakelens.json"))
        }

        fun fromJson(d: Map<String, Any?>): ModelInfo {
            val version = d.int("schema_version")
            if (version !in READABLE_SCHEMA_VERSIONS) {
                throw ModelInfoException("fakelens.json schema version $version is not supported (this app reads versions ${READABLE_SCHEMA_VERSIONS.sorted().joinToString()}) — re-export the model")
            }
            val facts = if (version == 1) schema1Facts(d) else d
            val labels = (d["labels"] ?: listOf("real", "fake")).asList("labels").map { it as? String ?: throw ModelInfoException("labels must be strings") }
            return ModelInfo(
                schemaVersion = version,
                modelName = d.string("model_name", ""),
                config = d.string("config", ""),
                variant = d.string("variant", ""),
                labels = labels,
                threshold = d.number("threshold", 0.5),
                elaInGraph = d.bool("ela_in_graph", false),
                preprocessing = preprocessingFromJson(d["preprocessing"].asObject("preprocessing")),
                bakedThreshold = d.optionalNumber("baked_threshold"),
                run = facts.string("run", ""),
                protocol = facts.string("protocol", ""),
                trainSources = (facts["train_sources"] ?: emptyList<String>()).asList("train_sources")
                    .map { it as? String ?: throw ModelInfoException("train_sources must be strings") },
                uncertainBand = d["uncertain_band"]?.asList("uncertain_band")
                    ?.map { (it as? Number)?.toDouble() ?: throw ModelInfoException("uncertain_band must hold numbers, got $it") },
            )
        }

        /** Schema 1's run, protocol and sources: `extra.run`, `extra.protocol`, and the source parts of
         *  `extra.data_counts`' "source/split" keys. */
        private fun schema1Facts(d: Map<String, Any?>): Map<String, Any?> {
            val extra = (d["extra"] ?: emptyMap<String, Any?>()).asObject("extra")
            val counts = (extra["data_counts"] ?: emptyMap<String, Any?>()).asObject("extra.data_counts")
            return mapOf("run" to extra["run"], "protocol" to extra["protocol"],
                         "train_sources" to counts.keys.map { it.substringBefore("/") }.toSortedSet().toList())
        }

        fun preprocessingFromJson(d: Map<String, Any?>): Preprocessing {
            val version = d.int("schema_version")
            if (version != Preprocessing.SCHEMA_VERSION) {
                throw ModelInfoException("preprocessing schema version $version is not supported (this app reads version ${Preprocessing.SCHEMA_VERSION}) — re-export the model")
            }
            val ela = d["ela"]?.asObject("preprocessing.ela")?.let { e ->
                val scale = when (val s = e["scale"] ?: "auto") {
                    "auto" -> ElaScale.Auto
                    is Number -> ElaScale.Fixed(s.toDouble())
                    else -> throw ModelInfoException("ELA scale must be \"auto\" or a positive number, got $s")
                }
                ElaParams(e.int("quality"), scale, ElaResolution.fromJson(e.string("resolution", "full")))
            }
            val fc = d["format_control"]?.asObject("preprocessing.format_control")?.let {
                FormatControl(it.int("quality_min"), it.int("quality_max"))
            }
            return Preprocessing(d.int("input_size"), ela, fc, d.string("resize", "bilinear"))
        }

        @Suppress("UNCHECKED_CAST")
        private fun Any?.asObject(what: String): Map<String, Any?> =
            this as? Map<String, Any?> ?: throw ModelInfoException("$what must be a JSON object")

        private fun Any?.asList(what: String): List<Any?> = this as? List<Any?> ?: throw ModelInfoException("$what must be a JSON array")

        private fun Map<String, Any?>.int(key: String): Int {
            val v = this[key] ?: throw ModelInfoException("missing \"$key\"")
            return when {
                v is Long && v in Int.MIN_VALUE..Int.MAX_VALUE -> v.toInt()
                v is Double && v == Math.floor(v) && !v.isInfinite() -> v.toInt()
                else -> throw ModelInfoException("\"$key\" must be an integer, got $v")
            }
        }

        private fun Map<String, Any?>.number(key: String, default: Double): Double = optionalNumber(key) ?: default

        private fun Map<String, Any?>.optionalNumber(key: String): Double? = when (val v = this[key]) {
            null -> null
            is Number -> v.toDouble()
            else -> throw ModelInfoException("\"$key\" must be a number, got $v")
        }

        private fun Map<String, Any?>.string(key: String, default: String): String = when (val v = this[key]) {
            null -> default
            is String -> v
            else -> throw ModelInfoException("\"$key\" must be a string, got $v")
        }

        private fun Map<String, Any?>.bool(key: String, default: Boolean): Boolean = when (val v = this[key]) {
            null -> default
            is Boolean -> v
            else -> throw ModelInfoException("\"$key\" must be true or false, got $v")
        }
    }
}

class ModelInfoException(message: String) : IllegalArgumentException(message)
