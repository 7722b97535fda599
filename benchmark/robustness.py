"""Robustness: accuracy and ROC AUC of every model when its test images have been through what
images suffer on their way to a phone — JPEG re-saves, downscaling, blur.

The perturbation is applied to the decoded RGB image *before* the model's own preprocessing (read
from its metadata), so an ELA model sees the ELA of the perturbed image, as it would in use. Each
(preprocessing, condition) is computed once and shared by every model with that preprocessing.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PIL import Image

from convert.runtime import TfliteModel
from benchmark.metrics import accuracy, roc_auc
from benchmark.scores import labelled, prep_key, score_images
from ela import Preprocessing, jpeg_roundtrip
from ela.perturb import Changed, blur, rescale
from train.data import Record, preprocess_records

if TYPE_CHECKING:  # reading metadata loads TensorFlow; `python -m benchmark --help` need not
    from convert.metadata import ModelInfo


CONDITIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "original": lambda img: img,
    "jpeg95": lambda img: jpeg_roundtrip(img, 95),
    "jpeg75": lambda img: jpeg_roundtrip(img, 75),
    "jpeg50": lambda img: jpeg_roundtrip(img, 50),
    "downscale0.5": lambda img: rescale(img, 0.5),  # then the model's own resize, as usual
    "blur1": lambda img: blur(img, 1),
    "reencode2": lambda img: jpeg_roundtrip(jpeg_roundtrip(img, 90), 75),  # shared, then re-shared
}


def changed(prep: Preprocessing, change: Callable[[Image.Image], Image.Image]) -> Changed:
    """`prep` with a fixed image change in front of it."""
    return Changed(prep, lambda img, sha: change(img))


def parse_conditions(names: list[str]) -> list[str]:
    """Condition names from the --robustness flag, in the given order; ["none"] → none."""
    if [n.strip() for n in names] == ["none"]:
        return []
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown robustness condition(s) {', '.join(unknown)}: "
                         f"use some of {', '.join(CONDITIONS)}, or none")
    return list(dict.fromkeys(names))


def robustness_rows(models: dict[str, tuple[ModelInfo, TfliteModel]], sets: dict[str, list[Record]],
                    conditions: list[str], original_scores: dict[str, dict[Path, float]]) -> list[dict]:
    """One row per model × condition × set: n, accuracy at the model's threshold, ROC AUC.
    `original_scores` (model → path → p(fake)) are the unperturbed scores already computed."""
    records = list({r.path: r for recs in sets.values() for r in recs}.values())
    rows = []
    for condition in conditions:
        images = {}  # preprocessing → path → model input, for this condition only (bounded memory)
        for name, (info, model) in models.items():
            if condition == "original":
                p_fake = original_scores[name]
            else:
                key = prep_key(info.input_preprocessing)
                if key not in images:
                    x, _, kept, _ = preprocess_records(records, changed(info.input_preprocessing, CONDITIONS[condition]),
                                                       f"{condition} images")
                    images[key] = {r.path: img for r, img in zip(kept, x)}
                p_fake = score_images(model, images[key])
            for set_name, recs in sets.items():
                y, p = labelled(recs, p_fake)
                if len(y):
                    rows.append({"model": name, "variant": info.variant, "run": info.run,
                                 "condition": condition, "set": set_name, "n": int(len(y)),
                                 "accuracy": accuracy(y, p, info.threshold)["accuracy"], "auc": roc_auc(y, p)})
    return rows


def render_robustness(rows: list[dict]) -> str:
    """Markdown: a row per model and set, a column per condition, cells "accuracy / AUC"."""
    if not rows:
        return ""
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    cells = {(r["model"], r["set"], r["condition"]): f"{r['accuracy']:.3f} / {r['auc']:.3f}" for r in rows}
    n = {(r["model"], r["set"]): r["n"] for r in rows}
    lines = ["Robustness on the 50:50 sets: accuracy / ROC AUC after perturbing each decoded image before the "
             "model's own preprocessing (jpegQ: re-saved at quality Q; downscale0.5: half size, then the usual "
             "resize; blur1: Gaussian blur, radius 1 px; reencode2: JPEG q90 then q75)", "",
             "| model | set | " + " | ".join(conditions) + " |", "|---|---|" + "---:|" * len(conditions)]
    for model, set_name in dict.fromkeys((r["model"], r["set"]) for r in rows):
        lines.append(f"| {model} | {set_name} (n={n[model, set_name]}) | "
                     + " | ".join(cells.get((model, set_name, c), "–") for c in conditions) + " |")
    return "\n".join(lines)
