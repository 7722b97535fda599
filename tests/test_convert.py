import numpy as np
import pytest

from convert.export import float_ops
from convert.metadata import ModelInfo, read_model_info, write_metadata
from convert.runtime import TfliteModel
from ela import ElaParams, FormatControl, Preprocessing
from tests.conftest import TINY_ELA, error_lines, run_cli


@pytest.fixture(scope="module")
def small_float_model() -> bytes:
    """A minimal image → 2-way softmax .tflite without metadata (a graph this small converts fast)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def classify(x):
        mean = tf.reduce_mean(x, axis=[1, 2, 3])[:, None] / 255.0
        return tf.nn.softmax(tf.concat([mean, 1 - mean], axis=1))

    return tf.lite.TFLiteConverter.from_concrete_functions([classify.get_concrete_function()], classify).convert()


def test_int8_export_has_uint8_io_and_integer_only_ops(tiny_export):
    report = tiny_export["int8"]
    assert report["input_dtype"] == "uint8" and report["output_dtype"] == "uint8"
    assert report["float_ops"] == []
    content = open(report["path"], "rb").read()
    assert float_ops(content) == []
    model = TfliteModel(content)
    assert model.input["quantization"] == (1.0, 0)  # raw pixels go straight in
    assert tiny_export["float32"]["float_ops"]  # the check does see float ops where they are


def test_int8_agrees_with_float32_on_validation_images(tiny_export):
    vs = tiny_export["int8"]["vs_float32"]
    assert vs["n"] > 0 and vs["decision_agreement"] >= 0.9 and vs["mean_abs_diff"] < 0.1


def test_exported_metadata_round_trips_preprocessing(tiny_export):
    for variant, report in tiny_export.items():
        info = read_model_info(report["path"])
        assert info.variant == variant and info.config == "demo"
        assert info.preprocessing == Preprocessing(96, ela=TINY_ELA)
        assert info.labels == ("real", "fake") and info.threshold == 0.5
        assert "FakeLens" in info.description


def test_metadata_round_trip_of_every_field(small_float_model):
    info = ModelInfo(name="m", config="gan_sd_ela", variant="float32", threshold=0.37,
                     preprocessing=Preprocessing(64, ela=ElaParams(80, "auto", "full"), format_control=FormatControl(72, 91)),
                     extra={"protocol": "controlled"})
    back = read_model_info(write_metadata(small_float_model, info))
    assert back == info
    # the standard tflite-support reader sees labels and normalisation too
    from tensorflow_lite_support.metadata.python import metadata as md
    displayer = md.MetadataDisplayer.with_model_buffer(write_metadata(small_float_model, info))
    assert set(displayer.get_packed_associated_file_list()) == {"fakelens.json", "labels.txt"}
    assert displayer.get_associated_file_buffer("labels.txt") == b"real\nfake\n"
    assert '"std": [\n              1.0' in displayer.get_metadata_json() or '"std"' in displayer.get_metadata_json()


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


def test_ela_in_graph_export_matches_python_preprocessing(tiny_run, tiny_export, demo_data, tmp_path):
    """The in-graph model fed resized RGB gives the scores the ordinary model gives on Python's ELA maps."""
    from convert.export import export_run
    from train.data import load_records, preprocess_records, select
    reports = {r["variant"]: r for r in export_run(tiny_run, tmp_path, ("float32", "int8"), check_images=24,
                                                   ela_in_graph=True)}
    info = read_model_info(reports["float32"]["path"])
    assert info.ela_in_graph and info.preprocessing.ela == TINY_ELA and info.input_preprocessing.ela is None
    records = select(load_records(demo_data), None, ["test"])[:12]
    rgb, *_ = preprocess_records(records, info.input_preprocessing, "rgb")
    ela_maps, *_ = preprocess_records(records, info.preprocessing, "ela")
    in_graph = TfliteModel(reports["float32"]["path"]).probabilities(rgb)
    ordinary = TfliteModel(tiny_export["float32"]["path"]).probabilities(ela_maps)
    assert np.allclose(in_graph, ordinary, atol=1e-4)
    int8 = reports["int8"]
    assert int8["input_dtype"] == "uint8" and int8["vs_float32"]["decision_agreement"] >= 0.9
    assert "FULLY_CONNECTED" not in int8["float_ops"]  # the classifier is int8; only the ELA stays float
    with pytest.raises(ValueError, match="float32 and int8 only"):
        export_run(tiny_run, tmp_path, ("float16",), ela_in_graph=True)
