"""Quantisation damage: how far each quantised export (float16, dynamic, int8) strays from the
float32 export of the same run and the same kind (ELA in the graph or not), image by image.

Accuracy alone hides damage that cancels out (one image flips to fake, another to real); the
decision agreement, the score differences and the images where they are largest show it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from convert.metadata import ModelInfo
from convert.variants import REFERENCE, agreement, reference_of
from benchmark.metrics import accuracy, roc_auc
from benchmark.tables import TEST_SETS
from train.data import Record

WORST_K = 5


def reference_for(name: str, infos: dict[str, ModelInfo]) -> str | None:
    """Name of the float32 export of the same run and kind as export `name`, if it was benchmarked."""
    return reference_of(name, infos, variant_of=lambda n: infos[n].variant,
                        kind_of=lambda n: infos[n].kind)


def compare(records: list[Record], ref: ModelInfo, p_ref: dict[Path, float], model: ModelInfo,
            p_model: dict[Path, float], k: int = WORST_K) -> dict | None:
    """Agreement and score/accuracy/AUC differences of two models on the records both scored."""
    kept = [r for r in records if r.path in p_ref and r.path in p_model]
    if not kept:
        return None
    y = np.array([r.y for r in kept], np.int64)
    a = np.array([p_ref[r.path] for r in kept], np.float64)
    b = np.array([p_model[r.path] for r in kept], np.float64)
    agree = agreement(a, b, ref.threshold, model.threshold)
    acc_a, acc_b = accuracy(y, a, ref.threshold)["accuracy"], accuracy(y, b, model.threshold)["accuracy"]
    both_classes = len(set(y.tolist())) == 2
    auc_a, auc_b = (roc_auc(y, a), roc_auc(y, b)) if both_classes else (None, None)
    worst = np.argsort(-np.abs(a - b), kind="stable")[:k]
    return {"n": agree["n"], "agreement": agree["decision_agreement"],
            "mean_abs_diff": agree["mean_abs_diff"], "max_abs_diff": agree["max_abs_diff"],
            "acc_reference": acc_a, "acc_model": acc_b, "delta_acc_points": 100 * (acc_b - acc_a),
            "auc_reference": auc_a, "auc_model": auc_b,
            "delta_auc_points": 100 * (auc_b - auc_a) if both_classes else None,
            "worst": [{"path": str(kept[i].path), "p_float": float(a[i]), "p_quant": float(b[i])} for i in worst]}


def quantization_rows(infos: dict[str, ModelInfo], scores: dict[str, dict[Path, float]],
                      sets: dict[str, list[Record]]) -> list[dict]:
    """One row per quantised model with a float32 reference × test set (every set of Tables 1-2;
    the AUC only where a set has both classes)."""
    rows = []
    for name, info in infos.items():
        ref = reference_for(name, infos)
        if info.variant == REFERENCE or ref is None:
            continue
        for ts in TEST_SETS:
            row = compare(sets.get(ts.name, []), infos[ref], scores[ref], info, scores[name])
            if row:
                rows.append({"run": info.run, "reference": ref, "model": name,
                             "variant": info.variant, "set": ts.name, **row})
    return rows


def render_quantization(rows: list[dict]) -> str:
    """Markdown: a row per quantised model and set, deltas in points against its float32."""
    if not rows:
        return ""
    pts = lambda v: "–" if v is None else f"{v:+.1f}"  # noqa: E731
    lines = ["Quantisation damage: each quantised export against the float32 export of the same run and kind, "
             "image by image (agreement = same decision; Δ = quantised − float32, in points)", "",
             "| model | reference | set | n | agreement | mean abs Δp | max abs Δp | Δ acc | Δ AUC "
             "| most changed, top 3 of 5 (p float → quant) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        worst = ", ".join(f"{Path(w['path']).name} ({w['p_float']:.2f} → {w['p_quant']:.2f})" for w in r["worst"][:3])
        lines.append(f"| {r['model']} | {r['reference']} | {r['set']} | {r['n']} | {r['agreement']:.3f} | "
                     f"{r['mean_abs_diff']:.4f} | {r['max_abs_diff']:.4f} | {pts(r['delta_acc_points'])} | "
                     f"{pts(r['delta_auc_points'])} | {worst} |")
    return "\n".join(lines)
