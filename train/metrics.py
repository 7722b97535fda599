"""The statistics that training, the format audit and convert compute themselves: a proportion's
95% Wilson interval, ROC AUC and curve, and the choice of a decision threshold on validation scores
(`operating_point`, which `convert --threshold_target` and `benchmark.threshold` share).
`benchmark.metrics` builds every other detection metric beside them (later stages import from
earlier ones, never the other way round)."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sensible at 0, 1 and small n)."""
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def roc_auc(y_true: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Chance that a random fake scores above a random real (ties count half), each image drawn
    with probability proportional to its weight (default: all equal); nan if a class is missing.
    Computed per distinct score, so in O(n log n) time and O(n) memory."""
    y_true, score = np.asarray(y_true), np.asarray(score)
    weight = np.ones(len(score)) if weight is None else np.asarray(weight, float)
    values, index = np.unique(score, return_inverse=True)
    pos = np.bincount(index, weights=weight * (y_true == 1), minlength=len(values))
    neg = np.bincount(index, weights=weight * (y_true == 0), minlength=len(values))
    if not (y_true == 1).any() or not (y_true == 0).any():
        return math.nan
    below = np.cumsum(neg) - neg  # weight of the reals scoring strictly lower
    return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def cumulative_counts(y_true: np.ndarray, score: np.ndarray):
    """Scores sorted high to low; true and false positives when calling fake at each distinct score."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], y_true[order]
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # last index of each distinct score
    return s[last], np.cumsum(y == 1)[last], np.cumsum(y == 0)[last]


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, from the strictest threshold (inf) down."""
    thresholds, tp, fp = cumulative_counts(y_true, score)
    pos, neg = max(1, int((y_true == 1).sum())), max(1, int((y_true == 0).sum()))
    return (np.concatenate([[0.0], fp / neg]), np.concatenate([[0.0], tp / pos]),
            np.concatenate([[np.inf], thresholds]))


def parse_target(target: str) -> tuple[str, float | None]:
    """A threshold target as (kind, false-positive rate): ("balanced", None), ("fpr", rate) or
    ("source_fpr", rate), with the rate in [0, 1); anything else is a ValueError saying what to write."""
    kind, sep, text = target.partition("=")
    if kind == "balanced" and not sep:
        return kind, None
    if kind not in ("fpr", "source_fpr") or not sep:
        raise ValueError(f"unknown threshold target {target!r}: use 'balanced', 'fpr=<rate>' or "
                         f"'source_fpr=<rate>'")
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"threshold target {target!r}: the false-positive rate must be a number in [0, 1), "
                         f"e.g. {kind}=0.05")
    return kind, rate


def threshold_for(y_true: np.ndarray, score: np.ndarray, target: str, sources: np.ndarray | None = None) -> float:
    """A decision threshold chosen on (validation) scores: target "fpr=0.05" gives the lowest
    threshold whose false-positive rate stays within 5%; "source_fpr=0.05" the lowest that keeps
    it within 5% for every real source in `sources` (one per image) — so an easy real source
    cannot hide a hard one; "balanced" maximises balanced accuracy."""
    kind, rate = parse_target(target)
    if kind == "source_fpr":
        if sources is None:
            raise ValueError(f"threshold target {target!r} needs each image's source")
        real_sources = sorted(set(sources[y_true == 0].tolist()))
        per_source = [threshold_for(y_true[(y_true == 1) | (sources == s)], score[(y_true == 1) | (sources == s)],
                                    f"fpr={rate}") for s in real_sources]
        return max(per_source)
    fpr, tpr, thresholds = roc_curve(y_true, score)
    finite = np.isfinite(thresholds)
    if kind == "balanced":
        i = int(np.argmax(np.where(finite, (tpr + 1 - fpr) / 2, -1)))
    else:
        ok = finite & (fpr <= rate + 1e-12)
        if not ok.any():
            raise ValueError(f"no threshold keeps {target} on these scores (too many reals share the top "
                             f"scores) — relax the target or use 'balanced'")
        i = int(np.flatnonzero(ok)[-1])
    return float(thresholds[i])


def operating_point(y_true: np.ndarray, score: np.ndarray, target: str, sources: np.ndarray) -> dict:
    """The threshold `target` chooses on these (validation) scores, and what it does there: accuracy,
    false- and true-positive rates, and the share of each source called fake."""
    threshold = threshold_for(y_true, score, target, sources)
    fake = score >= threshold
    return {"threshold": threshold, "target": target, "n": int(len(y_true)),
            "val_accuracy": float(np.mean(fake == (y_true == 1))),
            "val_fpr": float(fake[y_true == 0].mean()), "val_tpr": float(fake[y_true == 1].mean()),
            "called_fake_by_source": {s: float(fake[sources == s].mean()) for s in sorted(set(sources.tolist()))}}
