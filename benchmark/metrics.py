"""Detection metrics with 95% intervals. Fake is the positive class; `score` is p(fake).

Proportions (accuracy, rates) get Wilson intervals; rank metrics (AUC, AP, EER, TPR at a fixed
FPR) get stratified bootstrap intervals (reals and fakes resampled separately, fixed seed), so
every number in a report comes with its uncertainty at this data's small n.
"""
from __future__ import annotations

import math

import numpy as np

# Defined in train.metrics (convert chooses thresholds too); part of this module's API.
from train.metrics import (cumulative_counts, parse_target, roc_auc, roc_curve, threshold_for,  # noqa: F401
                           wilson_interval)

BOOTSTRAP_ROUNDS = 1000


def accuracy(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Share of correct decisions (fake when score >= threshold), with n per class and a Wilson interval."""
    pred = (score >= threshold).astype(np.int64)
    correct = int((pred == y_true).sum())
    n = int(len(y_true))
    return {"n": n, "n_real": int((y_true == 0).sum()), "n_fake": int((y_true == 1).sum()),
            "accuracy": correct / n if n else math.nan, "ci95": list(wilson_interval(correct, n))}


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as the recall-weighted mean of precision at each threshold."""
    n_pos = int((y_true == 1).sum())
    if n_pos == 0:
        return math.nan
    _, tp, fp = cumulative_counts(y_true, score)
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
