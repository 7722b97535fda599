"""From a training run to .tflite files: float32, float16, dynamic-range and full-integer int8, and
on request int8 after quantisation-aware training (`int8_qat`, see convert/qat.py).

int8 is calibrated on images of the run's own training split, preprocessed exactly as in
training (ELA included), and converted to integer builtin ops with a uint8 input, so a phone's
int8 delegate never meets a silent float fallback; only the final 2-way softmax stays float32,
so that scores keep their ranking below 1/256 (convert/selective_quantization.py). int8_qat is
converted the same way from the fine-tuned QAT model. Every file gets FakeLens metadata.
After converting, each file is checked: its ops' types, its I/O types, its size, and how often
it agrees with float32 on validation images. The model card (convert/model_card.py) is written
beside the files and packed into each.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras
from tensorflow_lite_support.metadata import schema_py_generated as tfl_schema

from convert.bake import bake_threshold
from convert.converters import converters_of
from convert.ela_layer import ElaLayer
from convert.metadata import CARD_FILE, ModelInfo, write_metadata
from convert.mirror import with_mirror_average
from convert.model_card import convert_command, export_card
from convert.qat import fine_tune_quantized
from convert.runtime import TfliteModel
from convert.selective_quantization import integer_with_float_softmax, quantize_keeping_ela_float
from convert.tail import auto_offsets, offset_tails, tail_run
from convert.variants import (AUTO_OFFSETS, CALIBRATION_SIZE, DEFAULT_VARIANTS, FLOAT_TAIL_OPS, QAT_EPOCHS,
                              QAT_LEARNING_RATE, REFERENCE, agreement, check_threshold_target, check_variants,
                              parse_tail_offsets, shift_warnings, source_shift, variant)
from train.data import DataError, Record, load_records, preprocess_records, select
from train.metrics import operating_point, require_enough_reals
from train.io import atomic_write_bytes, atomic_write_json, atomic_write_text, make_folder
from train.run_folder import Run, RunError, load_run

FLOAT_TYPES = (tfl_schema.TensorType.FLOAT32, tfl_schema.TensorType.FLOAT16)
OP_NAMES = {code: name for name, code in vars(tfl_schema.BuiltinOperator).items() if not name.startswith("_")}


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


def to_tflite(new_converter: Callable[[], tf.lite.TFLiteConverter], name: str,
              calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model (`new_converter` from `converters_of(model)`) as the variant table
    says; `calibration` (uint8 images) is required for the integer variants.

    int8_qat takes the model from `qat.fine_tune_quantized`: the converter uses its learned
    ranges, and the calibration images only fill the one range it lacks (inside the rescaling).
    """
    spec = variant(name)
    converter = new_converter()
    converter.optimizations = [tf.lite.Optimize.DEFAULT] if spec.optimized else []
    if spec.weight_type:
        converter.target_spec.supported_types = [tf.as_dtype(spec.weight_type)]
    if spec.integer:
        if calibration is None or not len(calibration):
            raise ValueError(f"{name} conversion needs calibration images")
        converter.representative_dataset = lambda: ([img[None].astype(np.float32)] for img in calibration)
        return integer_with_float_softmax(converter)
    with quiet_conversion():
        return converter.convert()


def float_ops(model: bytes) -> list[str]:
    """Names of the main graph's ops that read or write a float tensor (empty for a true
    integer-only model), read from the flatbuffer with the schema the metadata writer uses."""
    graph_model = tfl_schema.Model.GetRootAsModel(model, 0)
    graph = graph_model.Subgraphs(0)
    floats = {i for i in range(graph.TensorsLength()) if graph.Tensors(i).Type() in FLOAT_TYPES}
    found = []
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        tensors = [op.Inputs(j) for j in range(op.InputsLength())] + [op.Outputs(j) for j in range(op.OutputsLength())]
        if any(i in floats for i in tensors):
            found.append(OP_NAMES[_builtin_code(graph_model.OperatorCodes(op.OpcodeIndex()))])
    return found


def _builtin_code(code) -> int:
    """The op's builtin code: files keep codes below 127 in the old one-byte field too (schema v3a)."""
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def with_ela_in_graph(run: Run, model: tf_keras.Model) -> tf_keras.Model:
    """`model` (the run's classifier) behind an exact in-graph ELA: RGB pixels in, the same scores out."""
    ela = run.config.data.ela
    if ela is None or ela.resolution != "resized":
        raise RunError(f"{run.folder}: --ela_in_graph needs a run trained with ELA at resolution 'resized' "
                       f"(train with --ela_resolution resized); this run has "
                       f"{'no ELA' if ela is None else 'ELA at full resolution'}")
    size = run.config.model.input_size
    image = tf_keras.Input((size, size, 3), name="image", dtype="uint8")
    return tf_keras.Model(image, model(ElaLayer(ela)(image)), name=f"{model.name}_ela_in_graph")


def export_folder(run_folder: str | Path, out: str | Path | None = None, tail: str | None = None) -> Path:
    """Where a run's exports go: `out`, or the run's own export/ folder (export_tail_<source>/ for a tail)."""
    return Path(out) if out else Path(run_folder) / ("export" if tail is None else f"export_tail_{tail}")


def export_run(folder: str | Path, out: str | Path | None = None, variants=DEFAULT_VARIANTS, data: str | None = None,
               threshold: float = 0.5, check_images: int = 100, ela_in_graph: bool = False,
               qat_epochs: int = QAT_EPOCHS, qat_learning_rate: float = QAT_LEARNING_RATE,
               bake: bool = False, calibration_size: int = CALIBRATION_SIZE,
               mirror_average: bool = False, qat_augment: bool = False,
               threshold_target: str | None = None, qat_label_weight: float = 0.0,
               tail: str | None = None, tail_offsets: dict[str, float] | str | None = None) -> list[dict]:
    """Convert the run in `folder` to each variant under `out` (default folder/export).

    With `ela_in_graph` the model computes ELA itself (exactly as `ela.error_level`), takes the
    resized RGB image, and only float32 and int8 exist: int8 keeps the ELA in float32 and
    quantises the classifier behind it (float16/dynamic weights would break the ELA's exactness).
    int8_qat fine-tunes the run's model with quantisation-aware training first (`qat_epochs` at
    `qat_learning_rate`, on the run's augmented views with `qat_augment`, towards targets with
    `qat_label_weight` of the labels mixed in, see convert/qat.py);
    it is not available with `ela_in_graph`.
    The integer variants are calibrated on `calibration_size` images of the run's training split.
    With `bake` the threshold is folded into the last layer (convert/bake.py) before converting:
    every client's top-1 class is then the decision at `threshold`, the metadata's threshold is
    0.5 and its `baked_threshold` the given one; the files get "_baked" in their names.
    With `mirror_average` the score is the mean (in logits) over the image and its mirror image
    (convert/mirror.py): one more forward pass, no decision that a mirrored copy can change; the
    files get "_mirror" in their names. Choose the threshold on such an export, not the plain one.
    With `threshold_target` (e.g. "source_fpr=0.05", as `benchmark.threshold --target` takes it)
    each file's threshold is chosen on its own scores on the run's validation split, the way
    `python -m benchmark.threshold` would choose it, instead of `threshold`: a quantised export
    whose scores sit lower than float32's at the same ranking (QAT's do) gets its own operating
    point in one conversion, not in a second one (a second QAT costs minutes).
    Each file's metadata then also carries its band of uncertain verdicts, chosen on the same
    scores (train.metrics.uncertain_band).
    With `tail` (a fake source of an experts run) only that tail is exported, as the run trained
    on the real sources and that source alone (convert/tail.py); the files get "_tail_<source>".
    With `tail_offsets` ({source: logit}) each of those tails of an experts run scores its logit plus
    the offset before the maximum (convert/tail.py says why); the metadata's `extra` records them.
    `tail_offsets="auto"` chooses them on the run's validation split (convert/tail.py
    `choose_offsets`, at `threshold_target`, which it needs); the report lists every step tried.
    """
    specs = check_variants(variants, ela_in_graph)
    if mirror_average and any(v.needs_training for v in specs):
        raise ValueError("--mirror_average cannot be combined with int8_qat: quantisation-aware training "
                         "fine-tunes the plain classifier; export int8_qat without it")
    check_threshold_target(threshold_target, bake)
    if calibration_size < 1:
        raise ValueError(f"--calibration_size must be at least 1, got {calibration_size}")
    if tail is not None and tail_offsets:
        raise ValueError("--tail_offset weighs the tails of the joined model against each other; a tail exported "
                         "on its own (--tail) has none to weigh: drop one of the two")
    if tail_offsets == AUTO_OFFSETS:
        parse_tail_offsets([AUTO_OFFSETS], threshold_target)  # refused without a threshold target
    run = load_run(folder)
    if tail is not None:
        run = tail_run(run, tail)
    out_arg, data_arg = out, data  # as given, for the card's convert command
    out = make_folder(export_folder(run.folder, out, tail))  # fail before any work, not after
    data = data or run.summary["data"]["path"]
    records = load_records(data)
    if threshold_target is not None:  # a bound the validation reals are too few for fails before any work
        val_records = select(records, run.config.data.sources, ["val"])
        try:
            require_enough_reals(np.array([r.y for r in val_records]), threshold_target,
                                 np.array([r.source for r in val_records]))
        except ValueError as err:
            raise DataError(f"{data}: --threshold_target {threshold_target}: {err}") from None
    offset_steps = None
    if tail_offsets == AUTO_OFFSETS:
        chosen, offset_steps = auto_offsets(run, records, threshold_target)
        print("tail offsets chosen on validation: " + ", ".join(f"{s}={c:g}" for s, c in chosen.items()))
    else:
        chosen = tail_offsets or {}
    if chosen:
        run = offset_tails(run, chosen)
    cfg = run.config
    prep = cfg.preprocessing()
    model, suffix = run.model, ""
    if bake:
        model, suffix = bake_threshold(model, threshold), "_baked"
    if mirror_average:
        model, suffix = with_mirror_average(model), "_mirror" + suffix
    if ela_in_graph:
        model, suffix = with_ela_in_graph(run, model), "_ela_in_graph" + suffix
    info_threshold = 0.5 if bake else threshold  # what the exported scores are compared with
    offset_facts = {**({"tail_offsets": chosen} if chosen else {}),
                    **({"tail_offsets_chosen_by": AUTO_OFFSETS} if tail_offsets == AUTO_OFFSETS else {})}
    info_template = ModelInfo(name="", preprocessing=prep, ela_in_graph=ela_in_graph)
    input_prep = info_template.input_preprocessing
    calibration = val = None
    if any(v.integer for v in specs):
        calib_recs = interleave(select(records, cfg.data.sources, ["train"]), calibration_size)
        if not calib_recs:
            raise DataError(f"{data}: no training images of {', '.join(cfg.data.sources)} to calibrate int8 with")
        calibration, *_ = preprocess_records(calib_recs, input_prep, "calibration images")
    val, _, val_kept, _ = preprocess_records(interleave(select(records, cfg.data.sources, ["val"]), check_images),
                                             input_prep, "check images")
    if threshold_target is not None:  # the images benchmark.threshold would choose on
        op_x, op_y, op_kept, _ = preprocess_records(select(records, cfg.data.sources, ["val"]), input_prep,
                                                    "validation images (threshold)")
        if len(set(op_y.tolist())) < 2:
            raise DataError(f"{data}: --threshold_target needs real and fake validation images of "
                            f"{', '.join(cfg.data.sources)}")
        op_sources = np.array([r.source for r in op_kept])

    reports, p_fake, pending = [], [], []  # pending: written once the card inside each is known
    with converters_of(model) as new_converter:
        for spec in specs:
            print(f"converting {run.name} → {spec.name}")
            name = f"{run.name}{suffix}_{spec.name}"
            info = ModelInfo(name=name, preprocessing=prep, config=cfg.name, variant=spec.name,
                             threshold=info_threshold, ela_in_graph=ela_in_graph,
                             baked_threshold=threshold if bake else None, mirror_average=mirror_average,
                             description=f"FakeLens {cfg.description} ({spec.description}"
                                         f"{', ELA in graph' if ela_in_graph else ''}"
                                         f"{', mirror-averaged' if mirror_average else ''}"
                                         f"{f', threshold {threshold:g} baked in' if bake else ''}).",
                             run=run.name, protocol=cfg.data.protocol,
                             train_sources=tuple(sorted(cfg.data.sources)),
                             extra={"data_counts": run.summary["data"].get("counts", {}), **offset_facts})
            qat_summary = None
            if ela_in_graph and spec.integer:
                converted = quantize_keeping_ela_float(model, lambda: ([img[None]] for img in calibration),
                                                       new_converter())
            elif spec.needs_training:
                qat_model, qat_summary = fine_tune_quantized(model, cfg, records, calibration, qat_epochs,
                                                             qat_learning_rate, qat_augment, qat_label_weight)
                with converters_of(qat_model) as new_qat_converter:
                    converted = to_tflite(new_qat_converter, spec.name, calibration)
            else:
                converted = to_tflite(new_converter, spec.name, calibration)
            path = out / f"{name}.tflite"
            tfl = TfliteModel(converted)  # checked before its metadata, which is written once the card is known
            report = {"variant": spec.name, "path": str(path), "threshold": info.threshold,
                      "input_dtype": np.dtype(tfl.input["dtype"]).name,
                      "output_dtype": np.dtype(tfl.output["dtype"]).name,
                      "float_ops": sorted(set(float_ops(converted)))}
            if threshold_target is not None:
                report["operating_point"] = operating_point(op_y, tfl.probabilities(op_x)[:, 1], threshold_target,
                                                            op_sources)
                report["threshold"] = report["operating_point"]["threshold"]
                band = tuple(report["operating_point"]["uncertain_band"])
                info = dataclasses.replace(info, threshold=report["threshold"], uncertain_band=band)
                print(f"{spec.name}: threshold {report['threshold']:.6f} for {threshold_target} on "
                      f"{len(op_y)} validation images; uncertain when {band[0]:.4f} < p(fake) < {band[1]:.4f}")
            if qat_summary:
                report["qat"] = qat_summary
            if offset_steps:
                report["tail_offset_steps"] = offset_steps
            if bake:
                report["baked_threshold"] = threshold
            fallback = sorted(set(report["float_ops"]) - set(FLOAT_TAIL_OPS))
            if spec.integer and fallback and not ela_in_graph:
                raise RuntimeError(f"{path}: int8 model still has float ops {fallback} besides its float "
                                   f"softmax — this is a converter fallback, not an integer model")
            reports.append(report)
            p_fake.append(tfl.probabilities(val)[:, 1])
            pending.append((path, converted, info))
    # One run and kind here: the reference is this export's float32, wherever --variants put it.
    p_ref, t_ref = next(((p, report["threshold"]) for report, p in zip(reports, p_fake)
                         if report["variant"] == REFERENCE), (None, None))
    if p_ref is not None and len(val):
        for report, p in zip(reports, p_fake):
            report["vs_float32"] = agreement(p_ref, p, t_ref, report["threshold"])
            report["by_source"] = source_shift([r.source for r in val_kept], p_ref, p, t_ref, report["threshold"])
    card_info = ModelInfo(name=run.name, preprocessing=prep, config=cfg.name, threshold=info_threshold,
                          ela_in_graph=ela_in_graph, baked_threshold=threshold if bake else None,
                          mirror_average=mirror_average, description=f"FakeLens {cfg.description}",
                          extra=offset_facts)
    command = convert_command(run, out_arg, variants, data_arg, threshold, check_images, ela_in_graph, qat_epochs,
                              qat_learning_rate, bake, calibration_size, mirror_average, qat_augment, threshold_target,
                              qat_label_weight, tail_offsets)
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
        lines += [f"\nwarning: {w}" for w in shift_warnings(r["variant"], r.get("by_source", {}))]
    for r in reports:
        if "qat" in r:
            q = r["qat"]
            lines.append(f"\n{r['variant']}: quantisation-aware training, {q['epochs']} epoch(s) at learning rate "
                         f"{q['learning_rate']:g} on {q['n_train']} images, {q['wall_seconds']:.0f} s; val accuracy "
                         f"{q['val_accuracy']:.3f} (float32 {q['float_val_accuracy']:.3f}, n={q['n_val']})")
    return "\n".join(lines)
