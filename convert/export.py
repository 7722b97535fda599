"""From a training run to .tflite files: float32, float16, dynamic-range and full-integer int8, and
on request int8 after quantisation-aware training (`int8_qat`, see convert/qat.py).

int8 is calibrated on images of the run's own training split, preprocessed exactly as in
training (ELA included), and forced to integer-only builtin ops with uint8 input/output, so a
phone's int8 delegate never meets a silent float fallback; int8_qat is converted the same way
from the fine-tuned QAT model. Every file gets FakeLens metadata.
After converting, each file is checked: its ops' types, its I/O types, its size, and how often
it agrees with float32 on validation images. The model card (convert/model_card.py) is written
beside the files and packed into each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras

from convert.bake import bake_threshold
from convert.ela_graph import ElaLayer, quantize_keeping_ela_float
from convert.metadata import CARD_FILE, ModelInfo, write_metadata
from convert.model_card import convert_command, export_card
from convert.qat import fine_tune_quantized
from convert.runtime import TfliteModel
from convert.variants import (DEFAULT_VARIANTS, INTEGER_IO_DTYPE, INTEGER_VARIANTS, QAT_EPOCHS, QAT_LEARNING_RATE,
                              VARIANT_TEXT, VARIANTS, check_variants)
from train.data import DataError, Record, load_records, preprocess_records, select
from train.io import atomic_write_bytes, atomic_write_json, atomic_write_text, make_folder
from train.run_folder import Run, RunError, load_run

FLOAT_TYPES = (np.float32, np.float16)


def interleave(records: list[Record], n: int) -> list[Record]:
    """Up to n records taken round-robin over sources, so calibration sees every source."""
    by_source: dict[str, list[Record]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in by_source.values()):
        out.extend(v[i] for v in by_source.values() if i < len(v))
        i += 1
    return out[:n]


def to_tflite(model: tf_keras.Model, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model; `calibration` (uint8 images) is required for int8 and int8_qat.

    int8_qat takes the model from `qat.fine_tune_quantized`: the converter uses its learned
    ranges, and the calibration images only fill the one range it lacks (inside the rescaling).
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in INTEGER_VARIANTS:
        if calibration is None or not len(calibration):
            raise ValueError(f"{variant} conversion needs calibration images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None].astype(np.float32)] for img in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.as_dtype(INTEGER_IO_DTYPE)
    elif variant != "float32":
        raise ValueError(f"unknown variant {variant!r} — choose from {VARIANTS}")
    with quiet_conversion():
        return converter.convert()


def float_ops(model: bytes) -> list[str]:
    """Names of ops that read or write a float tensor (empty for a true integer-only model)."""
    interp = TfliteModel(model).interpreter
    dtypes = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    found = []
    for op in interp._get_ops_details():  # the public API has no op listing
        tensors = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(dtypes.get(i) in FLOAT_TYPES for i in tensors):
            found.append(op["op_name"])
    return found


def agreement(reference: TfliteModel, other: TfliteModel, images: np.ndarray, threshold: float) -> dict:
    """How closely `other` follows `reference` on `images`: decision agreement and p(fake) gaps."""
    p_ref = reference.probabilities(images)[:, 1]
    p_other = other.probabilities(images)[:, 1]
    gap = np.abs(p_ref - p_other)
    return {"n": int(len(images)), "decision_agreement": float(np.mean((p_ref >= threshold) == (p_other >= threshold))),
            "mean_abs_diff": float(gap.mean()), "max_abs_diff": float(gap.max())}


def with_ela_in_graph(run: Run, model: tf_keras.Model) -> tf_keras.Model:
    """`model` (the run's classifier) behind an exact in-graph ELA: RGB pixels in, the same scores out."""
    ela = run.config.ela
    if ela is None or ela.resolution != "resized":
        raise RunError(f"{run.folder}: --ela_in_graph needs a run trained with ELA at resolution 'resized' "
                       f"(train with --ela_resolution resized); this run has "
                       f"{'no ELA' if ela is None else 'ELA at full resolution'}")
    size = run.config.input_size
    image = tf_keras.Input((size, size, 3), name="image", dtype="uint8")
    return tf_keras.Model(image, model(ElaLayer(ela)(image)), name=f"{model.name}_ela_in_graph")


def export_folder(run_folder: str | Path, out: str | Path | None = None) -> Path:
    """Where a run's exports go: `out`, or the run's own export/ folder."""
    return Path(out) if out else Path(run_folder) / "export"


def export_run(folder: str | Path, out: str | Path | None = None, variants=DEFAULT_VARIANTS, data: str | None = None,
               threshold: float = 0.5, check_images: int = 100, ela_in_graph: bool = False,
               qat_epochs: int = QAT_EPOCHS, qat_learning_rate: float = QAT_LEARNING_RATE,
               bake: bool = False) -> list[dict]:
    """Convert the run in `folder` to each variant under `out` (default folder/export).

    With `ela_in_graph` the model computes ELA itself (exactly as `ela.error_level`), takes the
    resized RGB image, and only float32 and int8 exist: int8 keeps the ELA in float32 and
    quantises the classifier behind it (float16/dynamic weights would break the ELA's exactness).
    int8_qat fine-tunes the run's model with quantisation-aware training first (`qat_epochs` at
    `qat_learning_rate`, see convert/qat.py); it is not available with `ela_in_graph`.
    With `bake` the threshold is folded into the last layer (convert/bake.py) before converting:
    every client's top-1 class is then the decision at `threshold`, the metadata's threshold is
    0.5 and its `baked_threshold` the given one; the files get "_baked" in their names.
    """
    check_variants(variants, ela_in_graph)
    run = load_run(folder)
    out_arg, data_arg = out, data  # as given, for the card's convert command
    out = make_folder(export_folder(run.folder, out))  # fail before converting, not after
    cfg = run.config
    prep = cfg.preprocessing()
    model, suffix = run.model, ""
    if bake:
        model, suffix = bake_threshold(model, threshold), "_baked"
    if ela_in_graph:
        model, suffix = with_ela_in_graph(run, model), "_ela_in_graph" + suffix
    info_threshold = 0.5 if bake else threshold  # what the exported scores are compared with
    info_template = ModelInfo(name="", preprocessing=prep, ela_in_graph=ela_in_graph)
    input_prep = info_template.input_preprocessing
    data = data or run.summary["data"]["path"]
    records = load_records(data)
    calibration = val = None
    if set(INTEGER_VARIANTS) & set(variants):
        calib_recs = interleave(select(records, cfg.sources, ["train"]), cfg.calibration_size)
        if not calib_recs:
            raise DataError(f"{data}: no training images of {', '.join(cfg.sources)} to calibrate int8 with")
        calibration, *_ = preprocess_records(calib_recs, input_prep, "calibration images")
    val, *_ = preprocess_records(interleave(select(records, cfg.sources, ["val"]), check_images), input_prep,
                                 "check images")

    reports, reference, pending = [], None, []  # pending: written once the card inside each is known
    for variant in variants:
        print(f"converting {run.name} → {variant}")
        name = f"{run.name}{suffix}_{variant}"
        info = ModelInfo(name=name, preprocessing=prep, config=cfg.name, variant=variant,
                         threshold=info_threshold, ela_in_graph=ela_in_graph,
                         baked_threshold=threshold if bake else None,
                         description=f"FakeLens {cfg.description} ({VARIANT_TEXT.get(variant, variant)}"
                                     f"{', ELA in graph' if ela_in_graph else ''}"
                                     f"{f', threshold {threshold:g} baked in' if bake else ''}).",
                         run=run.name, protocol=cfg.protocol, train_sources=tuple(sorted(cfg.sources)),
                         extra={"data_counts": run.summary["data"].get("counts", {})})
        qat_summary = None
        if ela_in_graph and variant == "int8":
            converted = quantize_keeping_ela_float(model, lambda: ([img[None]] for img in calibration))
        elif variant == "int8_qat":
            qat_model, qat_summary = fine_tune_quantized(model, cfg, records, calibration, qat_epochs,
                                                         qat_learning_rate)
            converted = to_tflite(qat_model, variant, calibration)
        else:
            converted = to_tflite(model, variant, calibration)
        model_bytes = write_metadata(converted, info)
        path = out / f"{name}.tflite"
        tfl = TfliteModel(model_bytes)
        report = {"variant": variant, "path": str(path), "size_bytes": len(model_bytes),
                  "input_dtype": np.dtype(tfl.input["dtype"]).name, "output_dtype": np.dtype(tfl.output["dtype"]).name,
                  "float_ops": sorted(set(float_ops(model_bytes)))}
        if qat_summary:
            report["qat"] = qat_summary
        if bake:
            report["baked_threshold"] = threshold
        if variant in INTEGER_VARIANTS and report["float_ops"] and not ela_in_graph:
            raise RuntimeError(f"{path}: int8 model still has float ops {report['float_ops']} — "
                               f"this is a converter fallback, not an integer-only model")
        if reference is None and variant == "float32":
            reference = tfl
        if reference is not None and len(val):
            report["vs_float32"] = agreement(reference, tfl, val, info_threshold)
        reports.append(report)
        pending.append((path, converted, info))
    card_info = ModelInfo(name=run.name, preprocessing=prep, config=cfg.name, threshold=info_threshold,
                          ela_in_graph=ela_in_graph, baked_threshold=threshold if bake else None,
                          description=f"FakeLens {cfg.description}")
    command = convert_command(run, out_arg, variants, data_arg, threshold, check_images, ela_in_graph, qat_epochs,
                              qat_learning_rate, bake)
    card = export_card(run, records, data, card_info, reports, out, command)
    for (path, converted, info), report in zip(pending, reports):
        model_bytes = write_metadata(converted, info, card)
        atomic_write_bytes(path, model_bytes)
        report["size_bytes"] = len(model_bytes)
    card_path = out / f"{Path(CARD_FILE).stem}{suffix}.md"
    atomic_write_text(card_path, card)
    atomic_write_json(out / f"conversion{suffix}.json", reports)
    print(f"model card: {card_path} (also inside each .tflite as {CARD_FILE})")
    return reports


def format_report(reports: list[dict]) -> str:
    """The conversion summary as a Markdown table."""
    lines = ["| variant | size (KiB) | input | output | float ops | agrees with float32 | mean abs Δp(fake) |",
             "|---|---:|---|---|---|---:|---:|"]
    for r in reports:
        vs = r.get("vs_float32")
        agrees = f"{vs['decision_agreement']:.3f} (n={vs['n']})" if vs else "–"
        gap = f"{vs['mean_abs_diff']:.4f}" if vs else "–"
        ops = "none" if not r["float_ops"] else len(r["float_ops"])
        lines.append(f"| {r['variant']} | {r['size_bytes'] / 1024:.0f} | {r['input_dtype']} | {r['output_dtype']} | "
                     f"{ops} | {agrees} | {gap} |")
    if reports and "baked_threshold" in reports[0]:
        lines.append(f"\nthreshold {reports[0]['baked_threshold']:g} baked in: the top class is the decision at it "
                     f"(the metadata's threshold is 0.5)")
    for r in reports:
        if "qat" in r:
            q = r["qat"]
            lines.append(f"\n{r['variant']}: quantisation-aware training, {q['epochs']} epoch(s) at learning rate "
                         f"{q['learning_rate']:g} on {q['n_train']} images, {q['wall_seconds']:.0f} s; val accuracy "
                         f"{q['val_accuracy']:.3f} (float32 {q['float_val_accuracy']:.3f}, n={q['n_val']})")
    return "\n".join(lines)
