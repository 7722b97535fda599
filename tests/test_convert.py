import numpy as np
import pytest

from convert.export import float_ops
from convert.metadata import ModelInfo, read_model_info, write_metadata
from convert.runtime import TfliteModel
from ela import ElaParams, FormatControl, Preprocessing
from tests.conftest import TINY_CALIBRATION, TINY_ELA, error_lines, run_cli


def test_int8_export_is_integer_up_to_a_float_softmax(tiny_export):
    report = tiny_export["int8"]
    assert report["input_dtype"] == "uint8" and report["output_dtype"] == "float32"
    content = open(report["path"], "rb").read()
    assert report["float_ops"] == float_ops(content) == ["DEQUANTIZE", "SOFTMAX"]
    model = TfliteModel(content)
    assert model.input["quantization"] == (1.0, 0)  # raw pixels go straight in
    assert tiny_export["float32"]["float_ops"]  # the check does see float ops where they are


def test_int8_scores_keep_their_ranking_below_one_256th(tiny_export, demo_data):
    """A uint8 softmax output would round every p below 1/512 to 0: confident verdicts would tie,
    and a never-seen generator's images could not be ranked (ROC AUC) at all."""
    from train.data import load_records, preprocess_records, select
    records = select(load_records(demo_data), None, ["test"])
    x, *_ = preprocess_records(records, read_model_info(tiny_export["int8"]["path"]).preprocessing, "test")
    p = TfliteModel(tiny_export["int8"]["path"]).probabilities(x)
    steps = p * 256
    assert not np.allclose(steps, np.round(steps), atol=1e-3)  # not on the 1/256 grid


def test_int8_agrees_with_float32_on_validation_images(tiny_export):
    vs = tiny_export["int8"]["vs_float32"]
    assert vs["n"] > 0 and vs["decision_agreement"] >= 0.9 and vs["mean_abs_diff"] < 0.1


def test_source_shift_names_the_source_a_quantised_export_fails():
    """Overall agreement can be 0.9 while one kind of photo is wrecked: the check reports per source."""
    from convert.variants import shift_warnings, source_shift
    sources = ["real_a"] * 10 + ["fake_b"] * 10
    reference = np.r_[np.full(10, 0.05), np.full(10, 0.95)]
    quantised = reference.copy()
    quantised[:2] = 0.7  # two of the ten real_a images now called fake
    by_source = source_shift(sources, reference, quantised, 0.5)
    assert by_source == {"fake_b": {"n": 10, "reference_called_fake": 1.0, "called_fake": 1.0},
                         "real_a": {"n": 10, "reference_called_fake": 0.0, "called_fake": pytest.approx(0.2)}}
    (warning,) = shift_warnings("int8", by_source)
    assert warning.startswith("int8 calls 20% of the real_a check images fake where float32 calls 0% (n=10)")
    quantised[1] = 0.05  # one image (0.1 of the source) is the limit; below it nothing is said
    assert len(shift_warnings("int8", source_shift(sources, reference, quantised, 0.5), limit=0.11)) == 0
    assert len(shift_warnings("int8", source_shift(sources, reference, quantised, 0.5))) == 1


def test_conversion_check_reports_every_validation_source(tiny_export, demo_data):
    from train.data import load_records, select
    val_sources = {r.source for r in select(load_records(demo_data), None, ["val"])}
    by_source = tiny_export["int8"]["by_source"]
    assert set(by_source) <= val_sources and len(by_source) >= min(len(val_sources), 2)
    assert sum(v["n"] for v in by_source.values()) == tiny_export["int8"]["vs_float32"]["n"]
    float_shares = {s: v["called_fake"] for s, v in tiny_export["float32"]["by_source"].items()}
    assert float_shares == {s: v["reference_called_fake"] for s, v in by_source.items()}
    assert all(0.0 <= v["called_fake"] <= 1.0 for v in by_source.values())


def test_exported_metadata_round_trips_preprocessing(tiny_export):
    from train.demo_data import SOURCES, TEST_ONLY
    sources = tuple(sorted(set(SOURCES) - TEST_ONLY))  # the demo config trains on every source with training images
    for variant, report in tiny_export.items():
        info = read_model_info(report["path"])
        assert info.variant == variant and info.config == "demo"
        assert (info.run, info.protocol, info.train_sources) == ("tiny", "as_is", sources)
        assert set(info.extra) == {"data_counts"}
        assert info.preprocessing == Preprocessing(96, ela=TINY_ELA)
        assert info.labels == ("real", "fake") and info.threshold == 0.5
        assert "FakeLens" in info.description


def test_metadata_round_trip_of_every_field(small_float_model):
    info = ModelInfo(name="m", config="gan_sd_ela", run="gan_sd_ela_controlled", protocol="controlled",
                     train_sources=("gan_faces", "real_ffhq"), variant="float32", threshold=0.5, baked_threshold=0.37,
                     preprocessing=Preprocessing(64, ela=ElaParams(80, "auto", "full"), format_control=FormatControl(72, 91)),
                     extra={"data_counts": {"gan_faces/train": 3}})
    back = read_model_info(write_metadata(small_float_model, info))
    assert back == info
    assert info.to_json()["schema_version"] == 2 and info.to_json()["train_sources"] == ["gan_faces", "real_ffhq"]
    # the standard tflite-support reader sees labels and normalisation too
    from tensorflow_lite_support.metadata.python import metadata as md
    displayer = md.MetadataDisplayer.with_model_buffer(write_metadata(small_float_model, info))
    assert set(displayer.get_packed_associated_file_list()) == {"fakelens.json", "labels.txt"}
    assert displayer.get_associated_file_buffer("labels.txt") == b"real\nfake\n"
    assert '"std": [\n              1.0' in displayer.get_metadata_json() or '"std"' in displayer.get_metadata_json()


# fakelens.json as FakeLens wrote it before schema 2 (an export of runs/fakelens/fakelens_none, trimmed)
SCHEMA_1 = {"schema_version": 1, "model_name": "fakelens_none_int8", "config": "fakelens", "variant": "int8",
            "labels": ["real", "fake"], "threshold": 0.41, "ela_in_graph": False, "baked_threshold": None,
            "preprocessing": Preprocessing(64).to_dict(), "version": "0.1.0",
            "extra": {"protocol": "as_is", "run": "fakelens_none", "note": "kept",
                      "data_counts": {"gan_faces/train": 384, "gan_faces/val": 70, "real_lfw/train": 843}}}


def test_a_schema_1_export_is_read_with_its_run_protocol_and_sources_as_fields(small_float_model, monkeypatch):
    monkeypatch.setattr(ModelInfo, "to_json", lambda self: SCHEMA_1)  # the writer as schema 1 used it
    old = write_metadata(small_float_model, ModelInfo(name="fakelens_none_int8", preprocessing=Preprocessing(64)))
    monkeypatch.undo()
    info = read_model_info(old)
    assert (info.name, info.variant, info.threshold) == ("fakelens_none_int8", "int8", 0.41)
    assert (info.run, info.protocol, info.train_sources) == ("fakelens_none", "as_is", ("gan_faces", "real_lfw"))
    assert info.extra == {"note": "kept", "data_counts": SCHEMA_1["extra"]["data_counts"]}
    assert ModelInfo.from_json(info.to_json(), info.description, info.author, info.license) == info  # re-written as 2


def test_an_uncertain_band_round_trips_and_says_which_verdicts_are_uncertain(small_float_model):
    info = ModelInfo(name="m", preprocessing=Preprocessing(64), threshold=0.79, uncertain_band=(0.4, 0.95))
    back = read_model_info(write_metadata(small_float_model, info))
    assert back == info and back.to_json()["uncertain_band"] == [0.4, 0.95]
    assert [back.is_uncertain(p) for p in (0.4, 0.41, 0.79, 0.949, 0.95, 0.2)] == [False, True, True, True, False, False]
    plain = ModelInfo(name="m", preprocessing=Preprocessing(64))
    assert plain.is_uncertain(0.5) is None and plain.to_json()["uncertain_band"] is None
    older = {k: v for k, v in plain.to_json().items() if k != "uncertain_band"}  # exports before the band
    assert ModelInfo.from_json(older).uncertain_band is None


@pytest.mark.parametrize("band", [[0.8, 0.9], [0.1, 0.2], [0.1], [0.1, "0.9"], 0.3, [-0.1, 0.9], [0.1, 1.5]])
def test_a_damaged_uncertain_band_is_refused_naming_the_field(band):
    from convert.metadata import MetadataError
    doc = dict(ModelInfo(name="m", preprocessing=Preprocessing(64), threshold=0.5).to_json(), uncertain_band=band)
    with pytest.raises(MetadataError, match="uncertain_band"):
        ModelInfo.from_json(doc)


@pytest.mark.parametrize("change,words", [({"schema_version": 3}, "schema version 3 is not supported"),
                                          ({"schema_version": True}, "schema version True is not supported"),
                                          ({"extra": {"run": 7}}, "fakelens.json.run must be a string"),
                                          ({"extra": {"data_counts": []}}, "extra.data_counts must be a JSON object"),
                                          ({"extra": "x"}, "fakelens.json.extra must be a JSON object")])
def test_a_damaged_schema_1_document_is_refused_naming_the_field(change, words):
    from convert.metadata import MetadataError
    with pytest.raises(MetadataError, match=words):
        ModelInfo.from_json(dict(SCHEMA_1, **change))


def test_the_kotlin_readers_golden_metadata_reads_the_same_in_python():
    """android_demo/core/make_golden.py's fakelens.json documents (schemas 1 and 2) and what its
    Kotlin tests expect of them: the Python reader must agree, so both readers map schema 1 alike."""
    import importlib.util
    from tests.conftest import ROOT
    spec = importlib.util.spec_from_file_location("make_golden", ROOT / "android_demo" / "core" / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    docs = make_golden.metadata_documents()
    assert {doc["schema_version"] for _, doc, _ in docs} == {1, 2}
    for fname, doc, expected in docs:
        info = ModelInfo.from_json(doc)
        got = (info.name, info.variant, info.threshold, info.run, info.protocol, list(info.train_sources),
               None if info.uncertain_band is None else list(info.uncertain_band))
        assert got == tuple(expected.get(k) for k in ("model_name", "variant", "threshold", "run", "protocol",
                                                      "train_sources", "uncertain_band")), fname
    assert any("uncertain_band" in doc for _, doc, _ in docs)


def test_convert_rejects_a_folder_that_is_not_a_run(tmp_path):
    proc = run_cli("convert", "--run", str(tmp_path))
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert "config.json" in line


def test_threshold_chosen_on_validation_round_trips_through_metadata(tiny_export, demo_data, small_float_model):
    """`benchmark.threshold` picks the operating point; `convert --threshold` writes it (same writer)."""
    import dataclasses
    from benchmark.threshold import choose_threshold
    path = tiny_export["int8"]["path"]
    chosen = choose_threshold(path, str(demo_data), "balanced")
    assert 0.0 <= chosen["threshold"] <= 1.0 and chosen["n"] > 0
    assert (chosen["val_tpr"] + 1 - chosen["val_fpr"]) / 2 >= chosen["val_accuracy"] - 0.25
    info = dataclasses.replace(read_model_info(path), threshold=chosen["threshold"],
                               preprocessing=Preprocessing(64))  # the small model's own input size
    assert read_model_info(write_metadata(small_float_model, info)).threshold == chosen["threshold"]


def test_threshold_target_gives_each_file_the_threshold_benchmark_threshold_chooses(tiny_run, demo_data, tmp_path):
    """`convert --threshold_target` chooses each file's operating point on its own validation scores,
    as `benchmark.threshold --target` does on the finished file: the same threshold, in the
    metadata, conversion.json and the model card, and the agreement check at each file's own."""
    import json

    from benchmark.threshold import choose_threshold
    proc = run_cli("convert", "--run", str(tiny_run), "--out", str(tmp_path), "--variants", "float32,int8",
                   "--threshold_target", "fpr=0.2", "--check_images", "24", "--calibration_size",
                   str(TINY_CALIBRATION))
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = {r["variant"]: r for r in json.loads((tmp_path / "conversion.json").read_text())}
    card = (tmp_path / "MODEL_CARD.md").read_text()
    for variant, r in reports.items():
        chosen = choose_threshold(r["path"], str(demo_data), "fpr=0.2")
        assert read_model_info(r["path"]).threshold == r["threshold"] == chosen["threshold"]
        assert r["operating_point"] == {k: v for k, v in chosen.items() if k != "skipped"}
        assert chosen["val_fpr"] <= 0.2
        assert f"{variant} {r['threshold']:g}" in card
        # and the band of uncertain verdicts chosen on the same scores, in the metadata and the card
        low, high = r["operating_point"]["uncertain_band"]
        assert read_model_info(r["path"]).uncertain_band == (low, high) and low <= r["threshold"] <= high
        assert f"{variant} {low:.4f}–{high:.4f}" in card
    assert "chosen on the validation split for fpr=0.2 (at most 20% of the validation real photos called fake)" in card
    assert "--threshold_target fpr=0.2" in card and "--threshold " not in card
    vs = reports["int8"]["vs_float32"]
    assert vs["n"] == 24 and 0.0 <= vs["decision_agreement"] <= 1.0


def test_a_bound_the_validation_reals_cannot_give_fails_before_any_conversion(tiny_run, tmp_path):
    """source_fpr_bound=0.01 needs 99 validation reals of each source; the demo data has far fewer,
    so the export stops with one line that says so and writes nothing."""
    out = tmp_path / "export"
    proc = run_cli("convert", "--run", str(tiny_run), "--out", str(out), "--variants", "float32",
                   "--threshold_target", "source_fpr_bound=0.01")
    assert proc.returncode != 0
    (line,) = error_lines(proc)
    assert "source_fpr_bound=0.01" in line and "needs at least 99 real validation images" in line
    assert "converting" not in proc.stdout and not list(out.glob("*.tflite"))


def test_ela_in_graph_export_matches_python_preprocessing(tiny_run, tiny_export, tiny_ela_in_graph_export, demo_data,
                                                         tmp_path):
    """The in-graph model fed resized RGB gives the scores the ordinary model gives on Python's ELA maps."""
    from convert.export import export_run
    from train.data import load_records, preprocess_records, select
    reports = tiny_ela_in_graph_export
    info = read_model_info(reports["float32"]["path"])
    assert info.ela_in_graph and info.preprocessing.ela == TINY_ELA and info.input_preprocessing.ela is None
    records = select(load_records(demo_data), None, ["test"])[:12]
    rgb, *_ = preprocess_records(records, info.input_preprocessing, "rgb")
    ela_maps, *_ = preprocess_records(records, info.preprocessing, "ela")
    in_graph = TfliteModel(reports["float32"]["path"]).probabilities(rgb)
    ordinary = TfliteModel(tiny_export["float32"]["path"]).probabilities(ela_maps)
    assert np.allclose(in_graph, ordinary, atol=1e-4)
    int8 = reports["int8"]
    # uint8 in and float32 out, like the plain int8 export
    assert int8["input_dtype"] == "uint8" and int8["output_dtype"] == "float32"
    assert {"DEQUANTIZE", "SOFTMAX"} <= set(int8["float_ops"])
    # FakeLens dequantises it right: p(fake) follows the float32 export's
    assert int8["vs_float32"]["decision_agreement"] >= 0.9 and int8["vs_float32"]["mean_abs_diff"] < 0.1
    assert "FULLY_CONNECTED" not in int8["float_ops"]  # the classifier is int8; only the ELA stays float
    with pytest.raises(ValueError, match="float32 and int8 only"):
        export_run(tiny_run, tmp_path, ("float16",), ela_in_graph=True)


def _softmax_head_model(seed: int = 0):
    import tf_keras
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input((4,))
    hidden = tf_keras.layers.Dense(8, activation="relu")(inputs)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax", name="real_fake")(hidden))


@pytest.mark.parametrize("threshold", [0.03, 0.3, 0.5, 0.8, 0.995])
def test_baked_threshold_moves_the_decision_to_one_half(threshold):
    from convert.bake import bake_threshold
    model = _softmax_head_model()
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(1).normal(0, 20, (4000, 4)).astype(np.float32)  # p(fake) across 0..1
    scores = model(x).numpy().astype(np.float64)
    p = scores[:, 1]
    baked = bake_threshold(model, threshold)
    q = baked(x).numpy()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))  # a copy was changed
    shift = np.log(threshold / (1 - threshold))
    logit_p = np.log(p / scores[:, 0])  # not 1 - p: in float32, 1 - p near 1 keeps too few digits for 1e-3
    clear = np.abs(logit_p - shift) > 1e-4  # ties within float32 rounding are either way
    assert clear.mean() > 0.99 and 0.05 < (p >= threshold).mean() < 0.95
    assert np.array_equal((q[:, 1] >= 0.5)[clear], (p >= threshold)[clear])
    assert np.array_equal((q[:, 1] >= q[:, 0])[clear], (p >= threshold)[clear])  # top-1 = the decision
    # the log-odds move by -logit(t) (where float32 softmax is not saturated): a monotone change
    unsaturated = (scores.min(axis=1) > 1e-4) & (q.min(axis=1) > 1e-4)
    logit_q = np.log(q[:, 1].astype(np.float64) / q[:, 0])
    assert unsaturated.mean() > 0.2 and np.allclose((logit_q - logit_p)[unsaturated], -shift, atol=1e-3)


def test_baking_one_half_changes_no_weight():
    from convert.bake import bake_threshold
    model = _softmax_head_model()
    assert all(np.array_equal(a, b) for a, b in zip(bake_threshold(model, 0.5).get_weights(), model.get_weights()))


def test_bake_threshold_needs_the_softmax_head():
    import tf_keras
    from convert.bake import bake_threshold
    inputs = tf_keras.Input((4,))
    logits = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="logits")(inputs))
    with pytest.raises(ValueError, match="2-unit softmax Dense"):
        bake_threshold(logits, 0.3)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        bake_threshold(_softmax_head_model(), 1.0)


def test_baked_export_decides_as_the_unbaked_model_at_its_threshold(tiny_export, tiny_baked_export, demo_data):
    """Detector and the benchmark's accuracy on the baked export, at its metadata's threshold (0.5),
    give the unbaked export's decisions at the threshold that was baked in."""
    from benchmark.detector import Detector
    from benchmark.metrics import accuracy
    from train.data import load_records, select
    t = tiny_baked_export["threshold"]
    assert tiny_baked_export["float32"]["path"].endswith("tiny_baked_float32.tflite")
    baked, plain = Detector(tiny_baked_export["float32"]["path"], 1), Detector(tiny_export["float32"]["path"], 1)
    assert baked.info.threshold == 0.5 and baked.info.baked_threshold == t and plain.info.baked_threshold is None
    assert f"threshold {t:g} baked in" in baked.info.description
    assert f"threshold {t:g} baked in" in tiny_baked_export["stdout"]  # the command's report says so
    records = select(load_records(demo_data), None, ["test"])
    paths, y = [str(r.path) for r in records], np.array([r.y for r in records])
    got = list(baked.predict_many(paths))
    p_baked = np.array([g.p_fake for g in got])
    p_plain = np.array([g.p_fake for g in plain.predict_many(paths)])
    assert ((p_plain >= t) != (p_plain >= 0.5)).sum() >= 3  # t does change decisions on these images
    assert [g.label == "fake" for g in got] == (p_plain >= t).tolist()
    assert accuracy(y, p_baked, baked.threshold) == accuracy(y, p_plain, t)


def test_model_info_rejects_a_bad_baked_threshold():
    good = ModelInfo(name="m", preprocessing=Preprocessing(64)).to_json()
    assert good["baked_threshold"] is None and ModelInfo.from_json(good).baked_threshold is None
    for bad in (1.0, 0, "0.3", True):
        with pytest.raises(ValueError, match="baked_threshold"):
            ModelInfo.from_json(dict(good, baked_threshold=bad))


def test_the_variant_table_drives_the_choices_and_the_ela_in_graph_rule(tiny_run, tmp_path):
    from convert.export import export_run
    from convert.variants import (DEFAULT_VARIANTS, ELA_IN_GRAPH_VARIANTS, INTEGER_VARIANTS, VARIANT_TABLE, VARIANTS,
                                  variant)
    assert VARIANTS == ("float32", "float16", "dynamic", "int8", "int8_qat")
    assert DEFAULT_VARIANTS == ("float32", "float16", "dynamic", "int8")  # the plain ones: no training
    assert INTEGER_VARIANTS == ("int8", "int8_qat") and ELA_IN_GRAPH_VARIANTS == ("float32", "int8")
    assert variant("int8_qat").description == "int8 after quantisation-aware training"
    assert [v.name for v in VARIANT_TABLE if not v.optimized] == ["float32"]
    with pytest.raises(ValueError, match="unknown variant 'int4' — choose from float32,float16,dynamic,int8,int8_qat"):
        export_run(tiny_run, tmp_path, ("float32", "int4"))
    with pytest.raises(ValueError, match="--ela_in_graph exports float32 and int8 only, not dynamic, int8_qat"):
        export_run(tiny_run, tmp_path, ("int8_qat", "dynamic", "int8"), ela_in_graph=True)
    assert not list(tmp_path.iterdir())  # refused before anything was converted
    help_text = run_cli("convert", "--helpfull").stdout
    assert "Which of float32,float16,dynamic,int8,int8_qat to export" in help_text


def _float_ops_by_interpreter(content: bytes) -> list[str]:
    """The former float_ops (the interpreter's private op listing), as the oracle of the flatbuffer reading."""
    interp = TfliteModel(content).interpreter
    dtypes = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    return [op["op_name"] for op in interp._get_ops_details()
            if any(dtypes.get(i) in (np.float32, np.float16) for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0)]


def test_float_ops_read_from_the_flatbuffer_match_the_interpreter(tiny_export, tiny_ela_in_graph_export):
    for reports in (tiny_export, tiny_ela_in_graph_export):
        for report in reports.values():
            content = open(report["path"], "rb").read()
            # the interpreter also lists the XNNPACK delegate's node, which is no op of the file
            assert float_ops(content) == [op for op in _float_ops_by_interpreter(content) if op != "DELEGATE"]
    assert "CONV_2D" in float_ops(open(tiny_export["float32"]["path"], "rb").read())
    assert "CONV_2D" in float_ops(open(tiny_ela_in_graph_export["int8"]["path"], "rb").read())  # the float ELA


def test_reference_and_agreement_are_one_rule():
    from convert.variants import agreement, reference_of
    rows = [{"variant": "int8", "run": "a"}, {"variant": "float32", "run": "b"}, {"variant": "float32", "run": "a"}]
    by_run = lambda r: r["run"]  # noqa: E731
    assert reference_of(rows[0], rows, lambda r: r["variant"], by_run) is rows[2]
    assert reference_of({"variant": "int8", "run": "c"}, rows, lambda r: r["variant"], by_run) is None
    got = agreement(np.array([0.1, 0.6, 0.9, 0.4]), np.array([0.2, 0.4, 0.9, 0.45]), 0.5, 0.42)
    assert got == {"n": 4, "decision_agreement": 0.5, "mean_abs_diff": pytest.approx(0.0875),
                   "max_abs_diff": pytest.approx(0.2)}


def _graph(content: bytes) -> tuple:
    """A .tflite's tensors, ops, buffers and signatures, without the conversion metadata (which
    records the model type)."""
    from tensorflow_lite_support.metadata import schema_py_generated as schema
    model = schema.Model.GetRootAsModel(content, 0)
    graph = model.Subgraphs(0)
    skip = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())
            if model.Metadata(i).Name() == b"CONVERSION_METADATA"}
    tensors = [(graph.Tensors(i).Name(), graph.Tensors(i).Type(), graph.Tensors(i).Buffer())
               for i in range(graph.TensorsLength())]
    ops = [(graph.Operators(i).OpcodeIndex(), graph.Operators(i).InputsAsNumpy().tolist(),
            graph.Operators(i).OutputsAsNumpy().tolist()) for i in range(graph.OperatorsLength())]
    buffers = [model.Buffers(i).DataAsNumpy().tobytes() if model.Buffers(i).DataLength() else b""
               for i in range(model.BuffersLength()) if i not in skip]
    signatures = []
    for sig in (model.SignatureDefs(i) for i in range(model.SignatureDefsLength())):
        inputs = [(sig.Inputs(j).Name(), sig.Inputs(j).TensorIndex()) for j in range(sig.InputsLength())]
        outputs = [(sig.Outputs(j).Name(), sig.Outputs(j).TensorIndex()) for j in range(sig.OutputsLength())]
        signatures.append((sig.SignatureKey(), inputs, outputs))
    return tensors, ops, buffers, signatures


def test_one_saved_model_converts_every_variant_as_from_keras_model_does():
    """convert/converters.py saves the model once, its own way; each variant's graph must equal the
    one from_keras_model gives, in any order (no setting passes from one variant to the next)."""
    import tensorflow as tf
    import tf_keras
    from convert.converters import converters_of
    from convert.export import to_tflite
    from convert.variants import DEFAULT_VARIANTS
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((32, 32, 3))
    x = tf_keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    x = tf_keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.DepthwiseConv2D(3)(x))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(x))
    calibration = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    with converters_of(model) as new_converter:
        for name in DEFAULT_VARIANTS[::-1] + DEFAULT_VARIANTS:
            shared = to_tflite(new_converter, name, calibration)
            fresh = to_tflite(lambda: tf.lite.TFLiteConverter.from_keras_model(model), name, calibration)
            assert _graph(shared) == _graph(fresh), name


def test_one_converter_reads_its_saved_model_once_for_every_variant(monkeypatch):
    """The SavedModel is loaded as an object and read as a graph once per export, not once per
    variant (convert/converters.py `_reads_once`), and TensorFlow's loader is back afterwards."""
    import tf_keras
    from convert import converters
    from convert.export import to_tflite
    from convert.variants import DEFAULT_VARIANTS
    lite, loads, graph_reads = converters._LITE, [], []
    load, read_graph = lite._load, lite.TFLiteSavedModelConverterV2._load_saved_model
    monkeypatch.setattr(lite, "_load", lambda *args: loads.append(args[0]) or load(*args))
    monkeypatch.setattr(lite.TFLiteSavedModelConverterV2, "_load_saved_model",
                        lambda self, *args: graph_reads.append(args[0]) or read_graph(self, *args))
    counting_load = lite._load
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(4, 3)(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(x))
    calibration = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    with converters.converters_of(model) as new_converter:
        assert lite._load is not counting_load  # the reading-once loader is in place
        for name in DEFAULT_VARIANTS:
            assert to_tflite(new_converter, name, calibration)[4:8] == b"TFL3"
    assert len(DEFAULT_VARIANTS) == 4 and len(loads) == 1 and len(graph_reads) == 1
    assert lite._load is counting_load
