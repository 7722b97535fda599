package fakelens.core

import fakelens.core.Golden.double
import fakelens.core.Golden.int
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

@Suppress("UNCHECKED_CAST")
class ModelInfoTest {
    private val sample = """
        {"schema_version": 2, "model_name": "fakelens_gan_int8", "config": "gan", "variant": "int8",
         "run": "gan", "protocol": "as_is", "train_sources": ["gan_faces", "real_ffhq"],
         "labels": ["real", "fake"], "threshold": 0.5, "ela_in_graph": false,
         "preprocessing": {"schema_version": 1, "input_size": 224, "resize": "bilinear",
           "ela": {"quality": 90, "scale": "auto", "resolution": "full"}, "format_control": null}}
    """.trimIndent()

    @Test
    fun `parses the documented example`() {
        val m = ModelInfo.parse(sample)
        assertEquals("fakelens_gan_int8", m.modelName)
        assertEquals("gan", m.config)
        assertEquals("int8", m.variant)
        assertEquals(listOf("real", "fake"), m.labels)
        assertEquals(0.5, m.threshold)
        assertFalse(m.elaInGraph)
        assertEquals(Preprocessing(224, ElaParams(90, ElaScale.Auto, ElaResolution.FULL), null), m.preprocessing)
        assertEquals(ElaParams(90), m.elaOnDevice)
        assertEquals(1, m.fakeIndex)
        assertNull(m.bakedThreshold)
        assertEquals("gan", m.run)
        assertEquals("as_is", m.protocol)
        assertEquals(listOf("gan_faces", "real_ffhq"), m.trainSources)
    }

    @Test
    fun `schema 1 keeps the run, protocol and sources in extra, and they are read from there`() {
        val v1 = sample.replace("\"schema_version\": 2, \"model", "\"schema_version\": 1, \"model")
            .replace("\"run\": \"gan\", \"protocol\": \"as_is\", \"train_sources\": [\"gan_faces\", \"real_ffhq\"],",
                "\"extra\": {\"run\": \"gan_run\", \"protocol\": \"controlled\", \"data_counts\": " +
                    "{\"real_ffhq/train\": 4, \"gan_faces/train\": 3, \"gan_faces/val\": 1}},")
        val m = ModelInfo.parse(v1)
        assertEquals(1, m.schemaVersion)
        assertEquals("gan_run", m.run)
        assertEquals("controlled", m.protocol)
        assertEquals(listOf("gan_faces", "real_ffhq"), m.trainSources)
        assertEquals("fakelens_gan_int8", m.modelName)
        val bare = ModelInfo.parse(v1.replace(Regex("\"extra\": \\{.*\\}\\},"), ""))
        assertEquals(Triple("", "", emptyList<String>()), Triple(bare.run, bare.protocol, bare.trainSources))
        // schema 2 takes these from its own fields and ignores extra
        val v2 = ModelInfo.parse(sample.replace("\"config\": \"gan\",", "\"config\": \"gan\", \"extra\": {\"run\": \"other\"},"))
        assertEquals("gan", v2.run)
    }

    @Test
    fun `a baked threshold is read, and the decision stays at the metadata's threshold`() {
        val m = ModelInfo.parse(sample.replace("\"ela_in_graph\": false", "\"ela_in_graph\": false, \"baked_threshold\": 0.62"))
        assertEquals(0.62, m.bakedThreshold)
        assertEquals(0.5, m.threshold)
        assertNull(ModelInfo.parse(sample.replace("\"ela_in_graph\": false", "\"ela_in_graph\": false, \"baked_threshold\": null")).bakedThreshold)
    }

    @Test
    fun `an uncertain band is read, and a verdict strictly inside it is uncertain`() {
        val m = ModelInfo.parse(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": [0.3, 0.8]"))
        assertEquals(listOf(0.3, 0.8), m.uncertainBand)
        assertEquals(true, m.isUncertain(0.31))
        assertEquals(true, m.isUncertain(0.79))
        assertEquals(false, m.isUncertain(0.3))
        assertEquals(false, m.isUncertain(0.8))
        assertEquals(false, m.isUncertain(0.95))
        assertNull(ModelInfo.parse(sample).isUncertain(0.5)) // no band: nothing is said
        assertNull(ModelInfo.parse(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": null")).uncertainBand)
    }

    /** Every fakelens.json make_golden.py wrote (from ela.Preprocessing.to_dict) maps onto ModelInfo. */
    @TestFactory
    fun `golden metadata documents`() = Golden.list("metadata").filter { it["container"] == null }.map { case ->
        DynamicTest.dynamicTest(case["file"] as String) {
            val m = ModelInfo.parse(Golden.bytes(case["file"] as String).toString(Charsets.UTF_8))
            checkAgainst(m, case["expected"] as Map<String, Any?>)
        }
    }

    @Test
    fun `ela_in_graph means the app computes no ELA`() {
        val m = ModelInfo.parse(sample.replace("\"ela_in_graph\": false", "\"ela_in_graph\": true"))
        assertTrue(m.elaInGraph)
        assertNull(m.elaOnDevice)
        assertEquals(90, m.preprocessing.ela!!.quality)
    }

    @Test
    fun `numeric scale, resized resolution, format control and swapped labels`() {
        val m = ModelInfo.parse(
            sample.replace("\"scale\": \"auto\"", "\"scale\": 15").replace("\"full\"", "\"resized\"")
                .replace("\"format_control\": null", "\"format_control\": {\"quality_min\": 70, \"quality_max\": 95}")
                .replace("[\"real\", \"fake\"]", "[\"fake\", \"real\"]"),
        )
        assertEquals(ElaParams(90, ElaScale.Fixed(15.0), ElaResolution.RESIZED), m.preprocessing.ela)
        assertEquals(FormatControl(70, 95), m.preprocessing.formatControl)
        assertEquals(0, m.fakeIndex)
        assertEquals(1, m.realIndex)
    }

    @Test
    fun `format control quality follows the python rule`() {
        val fc = FormatControl(70, 95)
        // 0x0000001a = 26 -> 70 + 26 % 26 = 70; 0xffffffff % 26 = 15 -> 85
        assertEquals(70, fc.qualityFor("0000001a" + "0".repeat(56)))
        assertEquals(70 + (0xffffffffL % 26).toInt(), fc.qualityFor("ffffffff" + "0".repeat(56)))
        for (case in Golden.list("preprocessing").filter { it["fc_quality"] != null }) {
            assertEquals(case.int("fc_quality"), fc.qualityFor(case["sha256"] as String))
        }
    }

    @Test
    fun `rejects what the app cannot honour, saying why`() {
        fun bad(text: String, expect: String) {
            val e = assertThrows<ModelInfoException> { ModelInfo.parse(text) }
            assertTrue(e.message!!.contains(expect), "message '${e.message}' should mention '$expect'")
        }
        bad(sample.replace("\"schema_version\": 2, \"model", "\"schema_version\": 3, \"model"), "re-export")
        bad(sample.replace("[\"gan_faces\", \"real_ffhq\"]", "\"gan_faces\""), "train_sources")
        bad(sample.replace("[\"gan_faces\", \"real_ffhq\"]", "[\"gan_faces\", 3]"), "train_sources")
        bad(sample.replace("\"run\": \"gan\"", "\"run\": 7"), "run")
        bad(sample.replace("\"schema_version\": 2, \"model", "\"schema_version\": 1, \"extra\": {\"data_counts\": []}, \"model"), "data_counts")
        bad(sample.replace("\"quality\": 90", "\"quality\": 0"), "quality")
        bad(sample.replace("\"quality\": 90", "\"quality\": 90.5"), "integer")
        bad(sample.replace("\"scale\": \"auto\"", "\"scale\": -1"), "scale")
        bad(sample.replace("\"scale\": \"auto\"", "\"scale\": \"big\""), "scale")
        bad(sample.replace("\"full\"", "\"half\""), "resolution")
        bad(sample.replace("\"input_size\": 224", "\"input_size\": 16"), "input_size")
        bad(sample.replace("\"bilinear\"", "\"bicubic\""), "bilinear")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 1.5"), "threshold")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"baked_threshold\": 1.0"), "baked_threshold")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"baked_threshold\": \"0.3\""), "baked_threshold")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": [0.6, 0.9]"), "uncertain_band")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": [0.3]"), "uncertain_band")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": [0.3, \"0.8\"]"), "uncertain_band")
        bad(sample.replace("\"threshold\": 0.5", "\"threshold\": 0.5, \"uncertain_band\": 0.3"), "uncertain_band")
        bad(sample.replace("[\"real\", \"fake\"]", "[\"real\"]"), "labels")
        bad(sample.replace("\"ela_in_graph\": false", "\"ela_in_graph\": \"no\""), "ela_in_graph")
        bad(sample.replace("\"format_control\": null", "\"format_control\": {\"quality_min\": 90, \"quality_max\": 80}"), "format-control")
        bad(sample.dropLast(1), "not valid JSON")
        bad("[]", "object")
    }

    companion object {
        fun checkAgainst(m: ModelInfo, e: Map<String, Any?>) {
            assertEquals(e.int("schema_version"), m.schemaVersion)
            assertEquals(e["model_name"], m.modelName)
            assertEquals(e["config"], m.config)
            assertEquals(e["variant"], m.variant)
            assertEquals(e["labels"], m.labels)
            assertEquals(e.double("threshold"), m.threshold)
            assertEquals(e["ela_in_graph"], m.elaInGraph)
            assertEquals((e["baked_threshold"] as Number?)?.toDouble(), m.bakedThreshold)
            assertEquals((e["uncertain_band"] as List<Number>?)?.map { it.toDouble() }, m.uncertainBand)
            assertEquals(e["run"], m.run)
            assertEquals(e["protocol"], m.protocol)
            assertEquals(e["train_sources"], m.trainSources)
            val p = e["preprocessing"] as Map<String, Any?>
            assertEquals(p.int("input_size"), m.preprocessing.inputSize)
            assertEquals(p["resize"], m.preprocessing.resize)
            val ela = p["ela"] as Map<String, Any?>?
            if (ela == null) assertNull(m.preprocessing.ela) else {
                val got = m.preprocessing.ela!!
                assertEquals(ela.int("quality"), got.quality)
                assertEquals(ela["resolution"], got.resolution.json)
                when (val s = ela["scale"]) {
                    "auto" -> assertEquals(ElaScale.Auto, got.scale)
                    else -> assertEquals(ElaScale.Fixed((s as Number).toDouble()), got.scale)
                }
            }
            val fc = p["format_control"] as Map<String, Any?>?
            if (fc == null) assertNull(m.preprocessing.formatControl)
            else assertEquals(FormatControl(fc.int("quality_min"), fc.int("quality_max")), m.preprocessing.formatControl)
        }
    }
}
