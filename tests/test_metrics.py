import numpy as np
import pytest

from benchmark.metrics import (average_precision, bootstrap_interval, confusion, detection_metrics,
                               equal_error_rate, roc_auc, roc_curve, threshold_for, tpr_at_fpr)

# reals score 0.1 and 0.6, fakes 0.4 and 0.9 (worked through by hand in the comments)
Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.6, 0.4, 0.9])


def test_roc_curve_points():
    fpr, tpr, thresholds = roc_curve(Y, S)
    assert list(fpr) == [0, 0, 0.5, 0.5, 1] and list(tpr) == [0, 0.5, 0.5, 1, 1]
    assert list(thresholds) == [np.inf, 0.9, 0.6, 0.4, 0.1]


def test_rank_metrics_match_hand_computation():
    assert roc_auc(Y, S) == pytest.approx(3 / 4)  # 0.9 beats both reals, 0.4 beats 0.1 only
    # precision 1 at recall 0.5 (0.9), then 2/3 when recall reaches 1 (0.4)
    assert average_precision(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert equal_error_rate(Y, S) == pytest.approx(0.5)  # fpr = fnr = 0.5 at threshold 0.6
    assert tpr_at_fpr(Y, S, 0.01) == pytest.approx(0.5)
    assert tpr_at_fpr(Y, S, 0.5) == pytest.approx(1.0)


def test_ties_count_half():
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)


def test_confusion_and_threshold_selection():
    assert confusion(Y, S, 0.5) == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert threshold_for(Y, S, "balanced") == pytest.approx(0.9)  # first threshold with balanced acc 0.75
    assert threshold_for(Y, S, "fpr=0.5") == pytest.approx(0.4)
    assert threshold_for(Y, S, "fpr=0.0") == pytest.approx(0.9)
    with pytest.raises(ValueError, match="unknown threshold target"):
        threshold_for(Y, S, "best")


def test_source_fpr_threshold_keeps_every_real_source_within_the_rate():
    # source a: reals 0.1 0.2 0.3 0.4 (easy); source b: reals 0.5 0.6 0.7 0.8 (hard); fakes 0.75 0.9
    y = np.array([0] * 8 + [1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.75, 0.9])
    sources = np.array(["a"] * 4 + ["b"] * 4 + ["gan"] * 2)
    # pooled, 1 of 8 reals called fake is allowed: 0.75 (b's 0.8 is the one); per source, b allows none
    assert threshold_for(y, score, "fpr=0.125") == pytest.approx(0.75)
    assert threshold_for(y, score, "source_fpr=0.125", sources) == pytest.approx(0.9)
    assert threshold_for(y, score, "source_fpr=0.25", sources) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="needs each image's source"):
        threshold_for(y, score, "source_fpr=0.1")


def test_detection_metrics_carry_intervals_that_contain_the_estimate():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 60)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    d = detection_metrics(y, s, 0.5)
    for key in ("balanced_accuracy", "auc", "average_precision", "eer", "tpr_at_fpr_5pct"):
        low, high = d[f"{key}_ci95"]
        assert low <= d[key] + 1e-9 and d[key] <= high + 1e-9 and high - low < 0.6, key
    assert d["n"] == 120 and sum(d["confusion"].values()) == 120
    assert bootstrap_interval(roc_auc, y, s) == bootstrap_interval(roc_auc, y, s)  # fixed seed
