"""The two statistics that training and the format audit record themselves: a proportion's 95%
Wilson interval and ROC AUC. `benchmark.metrics` builds every other detection metric beside them
(later stages import from earlier ones, never the other way round)."""
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
