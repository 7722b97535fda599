"""The int8_qat variant: quantisation-aware training on the tiny run, then int8 with a float32 output."""
import json
from pathlib import Path

import numpy as np
import pytest

from convert.export import float_ops
from train.run_folder import load_run
from convert.metadata import read_model_info
from convert.runtime import TfliteModel
from ela import Preprocessing
from tests.conftest import TINY_CALIBRATION, TINY_ELA, error_lines, run_cli


def test_int8_qat_is_integer_up_to_its_float_output(tiny_qat_export):
    report = tiny_qat_export["int8_qat"]
    assert report["path"].endswith("_int8_qat.tflite") and Path(report["path"]).is_file()
    assert report["input_dtype"] == "uint8" and report["output_dtype"] == "float32"
    content = Path(report["path"]).read_bytes()
    # the converter makes a QAT graph's softmax int8; dequantize_before_softmax puts it after the DEQUANTIZE
    assert report["float_ops"] == float_ops(content) == ["DEQUANTIZE", "SOFTMAX"]
    assert TfliteModel(content).input["quantization"] == (1.0, 0)  # raw pixels go straight in, as for int8


def test_int8_qat_scores_are_the_float_softmax_of_its_int8_logits(tiny_qat_export, demo_data):
    """int8 logits, dequantised, then a float32 softmax: scores off the 1/256 grid, so confident
    verdicts keep their ranking (an int8 softmax tied them)."""
    from ai_edge_litert.interpreter import Interpreter
    from train.data import load_records, preprocess_records, select
    path = tiny_qat_export["int8_qat"]["path"]
    records = select(load_records(demo_data), None, ["test"])
    x, *_ = preprocess_records(records, read_model_info(path).preprocessing, "test")
    p = TfliteModel(path).probabilities(x)
    assert not np.allclose(p * 256, np.round(p * 256), atol=1e-3)
    interpreter = Interpreter(model_path=path, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {t["name"]: t["index"] for t in interpreter.get_tensor_details()}
    logits_name, = [name for name in tensors if name.endswith("/dequantized")]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[:1].astype(np.uint8))
    interpreter.invoke()
    logits = interpreter.get_tensor(tensors[logits_name]).astype(np.float64)
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).dtype == np.float32
    np.testing.assert_allclose(p[:1], np.exp(logits) / np.exp(logits).sum(1, keepdims=True), atol=1e-6)


def test_dequantize_before_softmax_leaves_other_models_as_they_are(tiny_export):
    from convert.selective_quantization import dequantize_before_softmax
    for variant in ("float32", "int8"):  # a float softmax already, and an int8 export whose softmax is float
        content = Path(tiny_export[variant]["path"]).read_bytes()
        assert dequantize_before_softmax(content) == content


def test_int8_qat_metadata_and_conversion_report(tiny_qat_export, tiny_run):
    report = tiny_qat_export["int8_qat"]
    info = read_model_info(report["path"])
    assert info.variant == "int8_qat" and info.config == "demo"
    assert info.preprocessing == load_run(tiny_run).config.preprocessing() == Preprocessing(96, ela=TINY_ELA)
    assert "quantisation-aware training" in info.description
    saved = {r["variant"]: r for r in json.loads((Path(report["path"]).parent / "conversion.json").read_text())}
    qat = saved["int8_qat"]["qat"]
    assert qat["epochs"] == 1 and qat["learning_rate"] == 1e-5 and qat["n_train"] > 0 and qat["n_val"] > 0
    assert 0.0 <= qat["val_accuracy"] <= 1.0 and 0.0 <= qat["float_val_accuracy"] <= 1.0
    assert qat["val_agreement"] >= 0.8  # the QAT model (simulated int8) follows the float model it learned from
    assert saved["int8_qat"]["vs_float32"] == report["vs_float32"]


def test_int8_qat_agrees_with_float32_on_validation_images(tiny_qat_export):
    vs = tiny_qat_export["int8_qat"]["vs_float32"]
    assert vs["n"] > 10 and vs["decision_agreement"] >= 0.8 and vs["mean_abs_diff"] < 0.15


def test_qat_model_keeps_frozen_layers_and_starts_from_calibrated_ranges(tiny_run, demo_data):
    import tf_keras
    from convert.qat import QuantizeLayer, _range_variables, quantize_aware, set_activation_ranges
    from train.data import load_records, preprocess_records, select
    model = load_run(tiny_run).model
    qat = quantize_aware(model)
    not_bn = {w.name for layer in model.layers if not isinstance(layer, tf_keras.layers.BatchNormalization)
              for w in layer.trainable_weights}
    assert {w.name for w in qat.trainable_weights} == not_bn
    assert len(not_bn) < len(model.trainable_weights) < len(model.weights)  # some BN trained, most layers frozen
    records = select(load_records(demo_data), None, ["train"])[:8]
    images, *_ = preprocess_records(records, Preprocessing(96, ela=TINY_ELA))
    set_activation_ranges(qat, model, images)
    ranges = {(getattr(layer, "layer", layer).name, kind): (float(lo.numpy()), float(hi.numpy()))
              for layer in qat.layers for kind, (lo, hi) in _range_variables(layer).items()}
    pixels = qat.layers[1]  # the input's QuantizeLayer, whose range variables carry its own name
    assert isinstance(pixels, QuantizeLayer) and ranges[(pixels.name, pixels.name)] == (0.0, 255.0)
    low, high = ranges[("to_unit_range", "output")]
    assert -1.0 <= low < high <= 1.0
    assert len(ranges) > 20 and (-6.0, 6.0) not in ranges.values()  # none left at tfmot's start range


def test_unknown_variant_and_qat_with_ela_in_graph_are_rejected(tiny_run, tmp_path):
    from convert.export import export_run
    from convert.qat import fine_tune_quantized
    with pytest.raises(ValueError, match="unknown variant.*int4.*int8_qat"):
        export_run(tiny_run, tmp_path, ("float32", "int4"))
    with pytest.raises(ValueError, match="float32 and int8 only, not int8_qat"):
        export_run(tiny_run, tmp_path, ("float32", "int8_qat"), ela_in_graph=True)
    with pytest.raises(ValueError, match="--qat_epochs must be at least 1"):
        fine_tune_quantized(None, load_run(tiny_run).config, [], np.zeros((1, 96, 96, 3), np.uint8), epochs=0)
    proc = run_cli("convert", "--run", str(tiny_run), "--out", str(tmp_path), "--variants", "float32,int4")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # a usage mistake, found before any work
    (line,) = error_lines(proc)
    assert "int4" in line and "int8_qat" in line
    assert not list(tmp_path.iterdir())


def test_cli_help_names_the_qat_flags_with_the_library_defaults():
    from convert.variants import QAT_EPOCHS, QAT_LEARNING_RATE
    proc = run_cli("convert", "--help")
    assert proc.returncode == 0 and "int8_qat" in proc.stdout
    assert "--qat_epochs: int8_qat" in proc.stdout and f"(default: '{QAT_EPOCHS}')" in proc.stdout
    assert f"(default: '{QAT_LEARNING_RATE}')" in proc.stdout
    assert "--[no]qat_augment: int8_qat: train on the run's own augmented views" in proc.stdout
    assert "--qat_label_weight: int8_qat: share of each image's label in QAT's targets" in proc.stdout


def test_qat_on_augmented_views_trains_on_other_images_than_plain_qat(tiny_run, demo_data):
    """--qat_augment: epoch e reads the run's augmented view e, so the fine-tuned weights differ
    from plain QAT's (same seed, same start) while the images counted and validated are the same."""
    from convert.qat import fine_tune_quantized
    from train.augment import Augmentation
    from train.configs import with_fields
    from train.data import DataError, load_records, preprocess_records, select
    run = load_run(tiny_run)
    records = load_records(demo_data)
    calibration, *_ = preprocess_records(select(records, None, ["train"])[:8], run.config.preprocessing())
    with pytest.raises(ValueError, match="--qat_augment needs a run trained with augmentation"):
        fine_tune_quantized(run.model, run.config, records, calibration, epochs=1, augment=True)
    with pytest.raises(DataError, match=r"QAT needs the training run's train and val images.*found \d+ and 0"):
        fine_tune_quantized(run.model, run.config, [r for r in records if r.split == "train"], calibration, epochs=1)
    cfg = with_fields(run.config, augment=Augmentation(views=2))
    results = {augment: fine_tune_quantized(run.model, cfg, records, calibration, epochs=2, augment=augment)
               for augment in (False, True)}
    (plain, s_plain), (views, s_views) = results[False], results[True]
    assert s_views["augmented_views"] and not s_plain["augmented_views"]
    assert s_views["n_train"] == s_plain["n_train"] > 0 and s_views["n_val"] == s_plain["n_val"]
    assert s_plain["float_val_accuracy"] == s_views["float_val_accuracy"]
    kernel = lambda m: next(w.numpy() for w in m.trainable_weights if "kernel" in w.name)  # noqa: E731
    assert not np.allclose(kernel(plain), kernel(views))


def test_convert_command_names_qat_augment_only_when_given(tiny_run):
    from convert.model_card import convert_command
    run = load_run(tiny_run)
    with_views = convert_command(run, None, ["int8_qat"], None, 0.5, 100, False, 2, 1e-5, qat_augment=True)
    assert with_views.endswith("--qat_epochs 2 --qat_learning_rate 1e-05 --qat_augment")
    assert "--qat_augment" not in convert_command(run, None, ["int8_qat"], None, 0.5, 100, False, 2, 1e-5)


def test_qat_label_weight_mixes_the_labels_into_the_targets(tiny_run, demo_data):
    """--qat_label_weight w: targets are (1 - w) × the float scores + w × the one-hot label, so the
    fine-tuned weights differ from pure distillation's; w = 0 leaves the float scores exactly."""
    from convert.model_card import convert_command
    from convert.qat import fine_tune_quantized, with_labels
    from train.data import Record, load_records, preprocess_records, select
    scores = np.array([[0.9, 0.1], [0.3, 0.7]], np.float32)
    records = [Record(Path("a.jpg"), "fake", "s", "train", ""), Record(Path("b.jpg"), "real", "s", "train", "")]
    assert np.array_equal(with_labels(scores, records, 0.0), scores)
    assert np.allclose(with_labels(scores, records, 0.5), [[0.45, 0.55], [0.65, 0.35]])
    run = load_run(tiny_run)
    data = load_records(demo_data)
    calibration, *_ = preprocess_records(select(data, None, ["train"])[:8], run.config.preprocessing())
    with pytest.raises(ValueError, match=r"--qat_label_weight must be in \[0, 1\]"):
        fine_tune_quantized(run.model, run.config, data, calibration, epochs=1, label_weight=1.5)
    (plain, s_plain), (mixed, s_mixed) = (fine_tune_quantized(run.model, run.config, data, calibration, epochs=1,
                                                              label_weight=w) for w in (0.0, 0.5))
    assert s_mixed["label_weight"] == 0.5 and s_plain["label_weight"] == 0.0
    kernel = lambda m: next(w.numpy() for w in m.trainable_weights if "kernel" in w.name)  # noqa: E731
    assert not np.allclose(kernel(plain), kernel(mixed))
    command = convert_command(run, None, ["int8_qat"], None, 0.5, 100, False, 2, 1e-5, qat_label_weight=0.5)
    assert command.endswith("--qat_learning_rate 1e-05 --qat_label_weight 0.5")
