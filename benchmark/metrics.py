"""Detection metrics with 95% intervals. Fake is the positive class; `score` is p(fake).

Proportions (accuracy, rates) get Wilson intervals; rank metrics (AUC, AP, EER, TPR at a fixed
FPR) get stratified bootstrap intervals (reals and fakes resampled separately, fixed seed), so
every number in a report comes with its uncertainty at this data's small n.
"""
from __future__ import annotations

import math

import numpy as np

from train.metrics import roc_auc, wilson_interval  # noqa: F401  (part of this module's API)

BOOTSTRAP_ROUNDS = 1000


def accuracy(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Share of correct decisions (fake when score >= threshold), with n per class and a Wilson interval."""
    pred = (score >= threshold).astype(np.int64)
    correct = int((pred == y_true).sum())
    n = int(len(y_true))
    return {"n": n, "n_real": int((y_true == 0).sum()), "n_fake": int((y_true == 1).sum()),
            "accuracy": correct / n if n else math.nan, "ci95": list(wilson_interval(correct, n))}


def _cumulative_counts(y_true: np.ndarray, score: np.ndarray):
    """Scores sorted high to low; true and false positives when calling fake at each distinct score."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], y_true[order]
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # last index of each distinct score
    return s[last], np.cumsum(y == 1)[last], np.cumsum(y == 0)[last]


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, from the strictest threshold (inf) down."""
    thresholds, tp, fp = _cumulative_counts(y_true, score)
    pos, neg = max(1, int((y_true == 1).sum())), max(1, int((y_true == 0).sum()))
    return (np.concatenate([[0.0], fp / neg]), np.concatenate([[0.0], tp / pos]),
            np.concatenate([[np.inf], thresholds]))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as the recall-weighted mean of precision at each threshold."""
    n_pos = int((y_true == 1).sum())
    if n_pos == 0:
        return math.nan
    _, tp, fp = _cumulative_counts(y_true, score)
    recall, precision = tp / n_pos, tp / (tp + fp)
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def equal_error_rate(y_true: np.ndarray, score: np.ndarray) -> float:
    """The error rate where false positives and false negatives are equally likely (nearest ROC point)."""
    fpr, tpr, _ = roc_curve(y_true, score)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(y_true: np.ndarray, score: np.ndarray, max_fpr: float) -> float:
    """Best share of fakes caught while calling at most `max_fpr` of reals fake."""
    fpr, tpr, _ = roc_curve(y_true, score)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


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


def confusion(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    pred = score >= threshold
    return {"tn": int((~pred & (y_true == 0)).sum()), "fp": int((pred & (y_true == 0)).sum()),
            "fn": int((~pred & (y_true == 1)).sum()), "tp": int((pred & (y_true == 1)).sum())}


def bootstrap_interval(metric, y_true: np.ndarray, score: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS,
                       seed: int = 0) -> list[float]:
    """2.5th and 97.5th percentiles of `metric` over stratified resamples."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    values = []
    for _ in range(rounds):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        values.append(metric(y_true[idx], score[idx]))
    return [float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))]


def detection_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Everything for a real/fake set: accuracy, balanced accuracy, AUC, AP, EER, TPR at 1% and
    5% FPR, confusion matrix; each with its 95% interval."""
    out = accuracy(y_true, score, threshold)
    cm = confusion(y_true, score, threshold)
    tpr = cm["tp"] / max(1, cm["tp"] + cm["fn"])
    tnr = cm["tn"] / max(1, cm["tn"] + cm["fp"])
    out["confusion"] = cm
    out["balanced_accuracy"] = (tpr + tnr) / 2
    out["balanced_accuracy_ci95"] = bootstrap_interval(
        lambda y, s: (((s >= threshold) & (y == 1)).sum() / max(1, (y == 1).sum()) +
                      ((s < threshold) & (y == 0)).sum() / max(1, (y == 0).sum())) / 2, y_true, score)
    rank_metrics = {"auc": roc_auc, "average_precision": average_precision, "eer": equal_error_rate,
                    "tpr_at_fpr_1pct": lambda y, s: tpr_at_fpr(y, s, 0.01),
                    "tpr_at_fpr_5pct": lambda y, s: tpr_at_fpr(y, s, 0.05)}
    for name, fn in rank_metrics.items():
        out[name] = fn(y_true, score)
        out[f"{name}_ci95"] = bootstrap_interval(fn, y_true, score)
    return out
