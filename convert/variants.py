"""The export variants, in one table (like YOLOv5's `export_formats()`), and the reference export
they are compared with. TensorFlow-free, so `python -m convert --help` stays fast.

Every rule about a variant reads this table: which variants `--variants` accepts and exports by
default (those that need no training), which need calibration images and integer ops, which
exist with the ELA in the graph, and how the converter treats their weights (`to_tflite`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import numpy as np

from train.metrics import parse_target


@dataclass(frozen=True)
class Variant:
    name: str
    integer: bool  # calibrated, integer builtin ops but the FLOAT_TAIL_OPS, INTEGER_IO_DTYPE input, float32 output
    needs_training: bool  # fine-tunes the model first (minutes), so exported only on request
    with_ela_in_graph: bool  # exists with --ela_in_graph (reduced weight precision would break the ELA's exactness)
    optimized: bool  # the converter's Optimize.DEFAULT (quantised weights); False only for the reference
    weight_type: str | None  # the converter's target_spec.supported_types, when not its default
    description: str  # how the model's metadata names it


VARIANT_TABLE = (
    Variant("float32", integer=False, needs_training=False, with_ela_in_graph=True, optimized=False,
            weight_type=None, description="float32"),
    Variant("float16", integer=False, needs_training=False, with_ela_in_graph=False, optimized=True,
            weight_type="float16", description="float16"),
    Variant("dynamic", integer=False, needs_training=False, with_ela_in_graph=False, optimized=True,
            weight_type=None, description="dynamic"),
    Variant("int8", integer=True, needs_training=False, with_ela_in_graph=True, optimized=True,
            weight_type=None, description="int8"),
    Variant("int8_qat", integer=True, needs_training=True, with_ela_in_graph=False, optimized=True,
            weight_type=None, description="int8 after quantisation-aware training"),
)
VARIANTS = tuple(v.name for v in VARIANT_TABLE)
DEFAULT_VARIANTS = tuple(v.name for v in VARIANT_TABLE if not v.needs_training)  # the plain ones
INTEGER_VARIANTS = tuple(v.name for v in VARIANT_TABLE if v.integer)
ELA_IN_GRAPH_VARIANTS = tuple(v.name for v in VARIANT_TABLE if v.with_ela_in_graph)
REFERENCE = "float32"  # every other export is compared with this one of the same run and kind
# The input type of every integer export: standard clients (MediaPipe Tasks, the Task Library) take
# uint8 or float32 tensors only. Its output is float32, from the only float ops it has: the int8
# logits dequantised and their softmax (convert/selective_quantization.py).
INTEGER_IO_DTYPE = "uint8"
FLOAT_TAIL_OPS = ("DEQUANTIZE", "SOFTMAX")
CALIBRATION_SIZE = 100  # images of the run's train split that calibrate the integer variants
QAT_EPOCHS = 2  # int8_qat defaults
QAT_LEARNING_RATE = 1e-5  # a tenth of the paper configs' training rate: adapt the weights, don't retrain


def variant(name: str) -> Variant:
    """The table's row for `name`, or a one-line ValueError listing the choices."""
    for v in VARIANT_TABLE:
        if v.name == name:
            return v
    raise ValueError(f"unknown variant {name!r} — choose from {','.join(VARIANTS)}")


T = TypeVar("T")


def reference_of(item: T, items: Iterable[T], variant_of: Callable[[T], str],
                 kind_of: Callable[[T], Hashable]) -> T | None:
    """The first of `items` that is the REFERENCE export of the same kind as `item` (whatever
    `kind_of` says must match: the run, ELA in the graph or not, a thread count...), or None."""
    return next((x for x in items if variant_of(x) == REFERENCE and kind_of(x) == kind_of(item)), None)


def agreement(p_reference, p_other, threshold_reference: float, threshold_other: float) -> dict:
    """How closely one export's p(fake) follows the reference's on the same images: the share of
    equal decisions (each at its own threshold) and the absolute p(fake) gaps."""
    a, b = np.asarray(p_reference), np.asarray(p_other)
    gap = np.abs(a - b)
    same = (a >= threshold_reference) == (b >= threshold_other)
    return {"n": int(len(a)), "decision_agreement": float(np.mean(same)), "mean_abs_diff": float(gap.mean()),
            "max_abs_diff": float(gap.max())}


SOURCE_SHIFT_LIMIT = 0.10  # a move in one source's share called fake worth a warning (2 of ~17 check images)


def source_shift(sources, p_reference, p_other, threshold: float, threshold_other: float | None = None
                 ) -> dict[str, dict]:
    """Per source of the check images: n and the share called fake by the reference and by the other
    export (at `threshold_other` when it has its own, else at `threshold`). Agreement over all
    images hides a quantised model that fails one kind of photo (an int8 export once called half of
    the studio portraits fake at 0.99 overall agreement)."""
    sources = np.asarray(sources)
    threshold_other = threshold if threshold_other is None else threshold_other
    fake_ref, fake_other = np.asarray(p_reference) >= threshold, np.asarray(p_other) >= threshold_other
    return {str(s): {"n": int(np.sum(sources == s)), "reference_called_fake": float(np.mean(fake_ref[sources == s])),
                     "called_fake": float(np.mean(fake_other[sources == s]))} for s in sorted(set(sources))}


def shift_warnings(variant_name: str, by_source: dict[str, dict], limit: float = SOURCE_SHIFT_LIMIT) -> list[str]:
    """One line per source whose share called fake moved by at least `limit` against the reference."""
    return [f"{variant_name} calls {v['called_fake']:.0%} of the {s} check images fake where {REFERENCE} calls "
            f"{v['reference_called_fake']:.0%} (n={v['n']}): compare them with `python -m benchmark --split val` "
            f"before shipping this variant"
            for s, v in by_source.items() if abs(v["called_fake"] - v["reference_called_fake"]) >= limit - 1e-9]


def check_threshold_target(threshold_target: str | None, bake: bool) -> None:
    """Refuse, before any work, a threshold target that is not one (train.metrics.parse_target) or
    that comes with --bake_threshold, which needs its threshold before converting."""
    if threshold_target is None:
        return
    parse_target(threshold_target)
    if bake:
        raise ValueError("--bake_threshold needs a --threshold: it folds one into the weights before converting, "
                         "--threshold_target chooses each file's after; choose it first with python -m "
                         "benchmark.threshold")


AUTO_OFFSETS = "auto"  # --tail_offset auto: chosen on the run's validation split (convert/tail.py choose_offsets)


def parse_tail_offsets(items: Sequence[str], threshold_target: str | None = None) -> dict[str, float] | str:
    """`--tail_offset` items "SOURCE=LOGIT" as {source: logit}, ["auto"] as "auto" (chosen on
    validation for the threshold `threshold_target` then chooses, convert/tail.py), or a ValueError
    saying what to write."""
    if list(items) == [AUTO_OFFSETS]:
        if threshold_target is None:
            raise ValueError("--tail_offset auto chooses the offsets for the threshold --threshold_target chooses "
                             "after them: give --threshold_target too (e.g. source_fpr=0.05)")
        return AUTO_OFFSETS
    offsets: dict[str, float] = {}
    for item in items:
        source, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not source or not math.isfinite(value) or source in offsets:
            raise ValueError(f"--tail_offset {item!r}: write SOURCE=LOGIT once per tail, e.g. sd21_faces=2, "
                             f"or {AUTO_OFFSETS} alone")
        offsets[source] = value
    return offsets


def check_variants(variants, ela_in_graph: bool = False) -> list[Variant]:
    """The table's rows for `variants`, refusing before any work a variant that does not exist or
    that cannot carry an in-graph ELA."""
    specs = [variant(v) for v in variants]
    unsupported = sorted(v.name for v in specs if not v.with_ela_in_graph) if ela_in_graph else []
    if unsupported:
        raise ValueError(f"--ela_in_graph exports {' and '.join(ELA_IN_GRAPH_VARIANTS)} only, not {', '.join(unsupported)}")
    return specs
