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


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Chance that a random fake scores above a random real (ties count half); nan if a class is missing."""
    pos, neg = score[y_true == 1], score[y_true == 0]
    if not len(pos) or not len(neg):
        return math.nan
    wins = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return float(wins)
