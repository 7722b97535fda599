"""Invariance probes: changes that must not change a decision, and how often they do.

A detector that reads the file instead of the face flips when a photo is merely re-saved,
rescaled, cropped a little, mirrored or turned grey. Each probe is applied to the decoded test
image before the model's own preprocessing (as in `benchmark.robustness`); per model, test set
and probe the benchmark reports the decision flip rate against the unchanged image, and per test
source (each is one class) the share called fake with and without the probe — so "reals of this
collection are called fake once grey" is a number, not a surprise. And per model, whether
steadiness says something about a verdict: how often the verdicts that some probe changes are
wrong, against those no probe changes (what `benchmark.predict --probes` tells a user).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PIL import Image

from convert.runtime import TfliteModel
from benchmark.robustness import changed
from benchmark.scores import prep_key, score_images
from ela.perturb import crop, greyscale, hflip, jpeg_resave, png_resave, rescale
from train.data import Record, preprocess_records

if TYPE_CHECKING:  # reading metadata loads TensorFlow; `python -m benchmark --help` need not
    from convert.metadata import ModelInfo

PROBES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "png": png_resave,
    "jpeg95_444": lambda img: jpeg_resave(img, 95, "4:4:4"),
    "jpeg75_420": lambda img: jpeg_resave(img, 75, "4:2:0"),
    "scale0.75": lambda img: rescale(img, 0.75),
    "scale1.5": lambda img: rescale(img, 1.5),
    "crop0.9": lambda img: crop(img, 0.9),
    "flip": hflip,
    "grey": greyscale,
}
PROBE_TEXT = ("png: lossless PNG re-save; jpeg95_444 / jpeg75_420: JPEG re-save at q95 4:4:4 / q75 4:2:0; "
              "scaleF: rescaled by F before the model's own resize; cropF: centre crop of F of each side "
              "(crop0.9: 90%); flip: mirrored; grey: greyscale in three equal channels")


def probe_change(name: str) -> Callable[[Image.Image], Image.Image] | None:
    """The change a probe name stands for: one of PROBES (the issue's set, the default), or any
    other `scaleF` (F > 0) or `cropF` (0 < F < 1) — e.g. crop0.5, the centre half of each side,
    which is how a photo cropped to the face reaches the model. None for an unknown name."""
    if name in PROBES:
        return PROBES[name]
    kinds = (("scale", rescale, lambda f: 0 < f < math.inf), ("crop", crop, lambda f: 0 < f < 1))
    for prefix, change, valid in kinds:
        if name.startswith(prefix):
            try:
                factor = float(name[len(prefix):])
            except ValueError:
                return None
            return (lambda img: change(img, factor)) if valid(factor) else None
    return None


def parse_probes(names: list[str]) -> list[str]:
    """Probe names from the --invariance flag, in the given order; ["none"] → none."""
    if [n.strip() for n in names] == ["none"]:
        return []
    unknown = [n for n in names if probe_change(n) is None]
    if unknown:
        raise ValueError(f"unknown invariance probe(s) {', '.join(unknown)}: use some of {', '.join(PROBES)}, "
                         f"scaleF (F > 0) or cropF (0 < F < 1), or none")
    return list(dict.fromkeys(names))


def _fake_share(records: list[Record], p_fake: dict[Path, float], threshold: float) -> tuple[int, float]:
    scored = [p_fake[r.path] for r in records if r.path in p_fake]
    return len(scored), (sum(p >= threshold for p in scored) / len(scored) if scored else float("nan"))


def invariance_rows(models: dict[str, tuple[ModelInfo, TfliteModel]], sets: dict[str, list[Record]],
                    test_records: list[Record], probes: list[str],
                    original_scores: dict[str, dict[Path, float]]) -> list[dict]:
    """Rows of two kinds per model × probe: kind "set" — flip rate on each test set (images
    scored both with and without the probe); kind "source" — share called fake of each test
    source, unchanged and probed, with its label and flip rate. Then one row of kind
    "steadiness" per model (probe "any"): over the test images scored under every probe, how many
    verdicts some probe changes, and the share of wrong verdicts among those and among the rest."""
    rows = []
    scored_by_all: dict[str, set[Path] | None] = {name: None for name in models}  # scored under every probe so far
    unsteady: dict[str, set[Path]] = {name: set() for name in models}  # decision changed by some probe
    for probe in probes:
        images = {}  # preprocessing → path → model input, for this probe only (bounded memory)
        for name, (info, model) in models.items():
            key = prep_key(info.input_preprocessing)
            if key not in images:
                probed_prep = changed(info.input_preprocessing, probe_change(probe))
                x, _, kept, _ = preprocess_records(test_records, probed_prep, f"{probe} images")
                images[key] = {r.path: img for r, img in zip(kept, x)}
            probed, original = score_images(model, images[key]), original_scores[name]
            facts = {"model": name, "variant": info.variant, "run": info.run, "probe": probe}
            both = probed.keys() & original.keys()
            flipped = {p for p in both if decision_changed(original[p], probed[p], info.threshold)}
            scored_by_all[name] = both if scored_by_all[name] is None else scored_by_all[name] & both
            unsteady[name] |= flipped

            def flips(records: list[Record]) -> tuple[int, float]:
                mine = [r.path for r in records if r.path in both]
                return len(mine), (sum(p in flipped for p in mine) / len(mine) if mine else float("nan"))

            for set_name, recs in sets.items():
                n, rate = flips(recs)
                if n:
                    rows.append(dict(facts, kind="set", group=set_name, n=n, flip_rate=rate))
            for source in sorted({r.source for r in test_records}):
                recs = [r for r in test_records if r.source == source]
                n, rate = flips(recs)
                if n:
                    rows.append(dict(facts, kind="source", group=source, label=recs[0].label, n=n, flip_rate=rate,
                                     fake_share=_fake_share(recs, probed, info.threshold)[1],
                                     fake_share_original=_fake_share(recs, original, info.threshold)[1]))
    for name, (info, _) in models.items():
        if scored_by_all[name]:
            rows.append(_steadiness_row(name, info, test_records, scored_by_all[name], unsteady[name],
                                        original_scores[name]))
    return rows


def decision_changed(p_original: float, p_changed: float, threshold: float) -> bool:
    """Whether a change moved a verdict across the threshold: the one definition of a flip."""
    return (p_original >= threshold) != (p_changed >= threshold)


def _steadiness_row(name: str, info: ModelInfo, records: list[Record], scored: set[Path], unsteady: set[Path],
                    original: dict[Path, float]) -> dict:
    """Errors among the verdicts that some probe changes ("unsteady") and among the others."""
    judged = [r for r in records if r.path in scored]
    wrong = {r.path for r in judged if (original[r.path] >= info.threshold) != (r.y == 1)}
    n_unsteady = sum(r.path in unsteady for r in judged)
    return {"model": name, "variant": info.variant, "run": info.run, "probe": "any", "kind": "steadiness",
            "group": "all test images", "n": len(judged), "n_unsteady": n_unsteady,
            "wrong_steady": len(wrong - unsteady), "wrong_unsteady": len(wrong & unsteady)}


def max_flip_failures(rows: list[dict], max_flip: float) -> list[str]:
    """One message per model, test set and probe whose flip rate exceeds `max_flip`."""
    return [f"{r['model']} on {r['group']}: probe {r['probe']} flips {r['flip_rate']:.1%} of decisions "
            f"(allowed: {max_flip:.1%})" for r in rows if r["kind"] == "set" and r["flip_rate"] > max_flip]


def render_invariance(rows: list[dict]) -> str:
    """Markdown: flip rates per model × test set × probe, then the share called fake per model ×
    test source, unchanged and under each probe."""
    if not rows:
        return ""
    probes = list(dict.fromkeys(r["probe"] for r in rows if r["kind"] != "steadiness"))
    cell = {(r["model"], r["kind"], r["group"], r["probe"]): r for r in rows}
    lines = ["Invariance: share of decisions that flip when only this changes (" + PROBE_TEXT + ")", "",
             "| model | set | " + " | ".join(probes) + " |", "|---|---|" + "---:|" * len(probes)]
    for model, group in dict.fromkeys((r["model"], r["group"]) for r in rows if r["kind"] == "set"):
        n = next(r["n"] for r in rows if r["model"] == model and r["group"] == group)
        lines.append(f"| {model} | {group} (n={n}) | " + " | ".join(
            f"{cell[model, 'set', group, p]['flip_rate']:.1%}" if (model, "set", group, p) in cell else "–"
            for p in probes) + " |")
    lines += ["", "Invariance per test source: share called fake, unchanged and under each probe "
              "(for real sources lower is better, for fake sources higher)", "",
              "| model | source | unchanged | " + " | ".join(probes) + " |", "|---|---|---:|" + "---:|" * len(probes)]
    for model, group in dict.fromkeys((r["model"], r["group"]) for r in rows if r["kind"] == "source"):
        first = next(r for r in rows if r["model"] == model and r["group"] == group and r["kind"] == "source")
        lines.append(f"| {model} | {group} ({first['label']}, n={first['n']}) | {first['fake_share_original']:.3f} | "
                     + " | ".join(f"{cell[model, 'source', group, p]['fake_share']:.3f}"
                                  if (model, "source", group, p) in cell else "–" for p in probes) + " |")
    steadiness = [r for r in rows if r["kind"] == "steadiness"]
    if steadiness:
        lines += ["", "Steadiness as a warning: verdicts that at least one probe changes (unsteady, what "
                  "`benchmark.predict --probes` flags) and how often they are wrong, against the others", "",
                  "| model | images | unsteady | wrong among unsteady | wrong among steady | errors flagged |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in steadiness:
            n_steady, wrong = r["n"] - r["n_unsteady"], r["wrong_steady"] + r["wrong_unsteady"]
            lines.append(f"| {r['model']} | {r['n']} | {r['n_unsteady']} ({percent_of(r['n_unsteady'], r['n'])}) | "
                         f"{r['wrong_unsteady']} ({percent_of(r['wrong_unsteady'], r['n_unsteady'])}) | "
                         f"{r['wrong_steady']} ({percent_of(r['wrong_steady'], n_steady)}) | "
                         f"{r['wrong_unsteady']} of {wrong} ({percent_of(r['wrong_unsteady'], wrong)}) |")
    return "\n".join(lines)


def percent_of(part: int, whole: int) -> str:
    """part / whole as a percentage for a table; – when whole is 0."""
    return f"{part / whole:.1%}" if whole else "–"
