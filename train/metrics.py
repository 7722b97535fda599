"""The statistics that training, the format audit and convert compute themselves: a proportion's
95% Wilson interval, ROC AUC and curve, and the choice of a decision threshold on validation scores
(`operating_point`, which `convert --threshold_target` and `benchmark.threshold` share) and the
band of uncertain verdicts around it (`uncertain_band`).
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


TARGET_KINDS = ("fpr", "source_fpr", "fpr_bound", "source_fpr_bound")


def parse_target(target: str) -> tuple[str, float | None]:
    """A threshold target as (kind, false-positive rate): ("balanced", None) or (kind, rate) for a
    kind of TARGET_KINDS, with the rate in [0, 1) (in (0, 1) for a bound); anything else is a
    ValueError saying what to write."""
    kind, sep, text = target.partition("=")
    if kind == "balanced" and not sep:
        return kind, None
    if kind not in TARGET_KINDS or not sep:
        raise ValueError(f"unknown threshold target {target!r}: use 'balanced', 'fpr=<rate>', 'source_fpr=<rate>', "
                         f"'fpr_bound=<rate>' or 'source_fpr_bound=<rate>'")
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    low_ok = rate > 0.0 if kind.endswith("_bound") else rate >= 0.0
    if not (low_ok and rate < 1.0):
        raise ValueError(f"threshold target {target!r}: the false-positive rate must be a number in "
                         f"{'(0' if kind.endswith('_bound') else '[0'}, 1), e.g. {kind}=0.05")
    return kind, rate


def describe_target(target: str) -> str:
    """What a threshold chosen for `target` promises, in words (for model cards)."""
    kind, rate = parse_target(target)
    if kind == "balanced":
        return "the highest balanced accuracy on the validation photos"
    share = f"{rate * 100:g}%"
    return {"fpr": f"at most {share} of the validation real photos called fake",
            "source_fpr": f"at most {share} of each real source's validation photos called fake",
            "fpr_bound": f"a new real photo called fake with at most {share} chance",
            "source_fpr_bound": f"a new real photo of each validation source's kind called fake with at most "
                                f"{share} chance"}[kind]


def allowed_false_positives(kind: str, rate: float, n_real: int) -> int:
    """How many of `n_real` validation reals a threshold for ("fpr" | "fpr_bound", rate) may call fake.
    "fpr": k = ⌊rate·n⌋, the rate on these very reals. "fpr_bound": k = ⌊rate·(n+1)⌋ − 1, the
    split-conformal rank. The lowest threshold that lets k reals through sits above the (k+1)-th
    highest real score, and a new real photo exchangeable with these ranks uniformly among the n + 1,
    so it is called fake with probability at most (k+1)/(n+1) — reached when fakes score densely
    just above that real, as they do near a detector's threshold. The bound keeps that within the
    rate; ⌊rate·n⌋ does not (76 reals at 0.05: k = 3, up to 4/77 = 5.2%; the bound allows 2, 3/77 =
    3.9%). Negative when n is too small for the bound."""
    if kind == "fpr_bound":
        return math.floor(rate * (n_real + 1) + 1e-9) - 1
    return math.floor(rate * n_real + 1e-9)


def require_enough_reals(y_true: np.ndarray, target: str, sources: np.ndarray | None = None) -> None:
    """A ValueError when no scores at all could meet `target` on these labels: a bound needs at least
    ⌈1/rate − 1⌉ real validation images (of each real source in `sources` for "source_fpr_bound"),
    so that `allowed_false_positives` is not negative. Cheap: it reads labels, not scores, so an
    export can check before any work."""
    kind, rate = parse_target(target)
    if not kind.endswith("_bound"):
        return
    real = y_true == 0
    groups = ({f"real source {s!r}: ": sources[real] == s for s in sorted(set(sources[real].tolist()))}
              if kind.startswith("source_") else {"": np.ones(int(real.sum()), bool)})
    for prefix, mine in groups.items():
        n_real = int(mine.sum())
        if allowed_false_positives("fpr_bound", rate, n_real) < 0:
            raise ValueError(f"{prefix}threshold target {target!r} needs at least {math.ceil(1 / rate - 1 - 1e-9)} "
                             f"real validation images, there are {n_real}: use more, a larger rate, or fpr=<rate>")


def threshold_for(y_true: np.ndarray, score: np.ndarray, target: str, sources: np.ndarray | None = None) -> float:
    """A decision threshold chosen on (validation) scores: target "fpr=0.05" gives the lowest
    threshold whose false-positive rate stays within 5%; "source_fpr=0.05" the lowest that keeps
    it within 5% for every real source in `sources` (one per image) — so an easy real source
    cannot hide a hard one; "fpr_bound=0.05" / "source_fpr_bound=0.05" the lowest that keeps the
    chance of a new real photo (of each source) being called fake within 5%
    (`allowed_false_positives`); "balanced" maximises balanced accuracy."""
    kind, rate = parse_target(target)
    if kind.startswith("source_") and sources is None:
        raise ValueError(f"threshold target {target!r} needs each image's source")
    require_enough_reals(y_true, target, sources)
    if kind.startswith("source_"):
        per_source = []
        for s in sorted(set(sources[y_true == 0].tolist())):
            mine = (y_true == 1) | (sources == s)
            try:
                per_source.append(threshold_for(y_true[mine], score[mine], f"{kind.removeprefix('source_')}={rate}"))
            except ValueError as err:
                raise ValueError(f"real source {s!r}: {err}") from None
        return max(per_source)
    fpr, tpr, thresholds = roc_curve(y_true, score)
    finite = np.isfinite(thresholds)
    if kind == "balanced":
        i = int(np.argmax(np.where(finite, (tpr + 1 - fpr) / 2, -1)))
    else:
        n_real = int((y_true == 0).sum())
        ok = finite & (np.round(fpr * max(1, n_real)) <= allowed_false_positives(kind, rate, n_real))
        if not ok.any():
            raise ValueError(f"no threshold keeps {target} on these scores (too many reals share the top "
                             f"scores) — relax the target or use 'balanced'")
        i = int(np.flatnonzero(ok)[-1])
    return float(thresholds[i])


UNCERTAIN_SHARE = 0.05
"""The share of its validation verdicts an export calls uncertain. On the shipped `fakelens`
files (docs/results.md §2, session 29) that 5% held 7 of the 8 (float32) and 7 of the 9 (int8)
validation errors: a verdict close to the threshold is wrong about 1 time in 4, one far from it
about 1 in 300-600."""


def logit(p) -> np.ndarray:
    """log(p / (1 - p)), with p kept 1e-7 away from 0 and 1 so that it stays finite."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def uncertain_band(score: np.ndarray, threshold: float, share: float = UNCERTAIN_SHARE) -> tuple[float, float]:
    """(low, high): the p(fake) interval around `threshold`, symmetric in logits, that holds `share`
    of these (validation) scores; a verdict with low < p(fake) < high is uncertain. It needs no
    labels: its width is where the scores sit, so a model that separates the classes widely gets
    a narrow band. Logits, because p(fake) = sigmoid(logit) and a step in logit is the same step in
    evidence at every p (a band in p would be narrow above a high threshold and wide below it)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the uncertain share must lie strictly between 0 and 1, got {share}")
    centre = float(logit(threshold))
    width = float(np.quantile(np.abs(logit(score) - centre), share))
    low, high = 1 / (1 + np.exp(-(centre - width))), 1 / (1 + np.exp(-(centre + width)))
    return min(float(low), threshold), max(float(high), threshold)  # rounding (or a clipped logit) never
    # puts the threshold outside its own band, e.g. when 5% of int8 scores sit exactly on it (width 0)


def in_band(score, band: tuple[float, float]):
    """Whether each score lies strictly inside `band` (low, high): the one definition of an
    uncertain verdict (ModelInfo.is_uncertain and the Android core's isUncertain read it so)."""
    low, high = band
    return (np.asarray(score) > low) & (np.asarray(score) < high)


def operating_point(y_true: np.ndarray, score: np.ndarray, target: str, sources: np.ndarray) -> dict:
    """The threshold `target` chooses on these (validation) scores, and what it does there: accuracy,
    false- and true-positive rates, the share of each source called fake; and the band of uncertain
    verdicts around it (`uncertain_band`), with how often those and the others are wrong there."""
    threshold = threshold_for(y_true, score, target, sources)
    fake = score >= threshold
    low, high = uncertain_band(score, threshold)
    uncertain, wrong = in_band(score, (low, high)), fake != (y_true == 1)
    return {"threshold": threshold, "target": target, "n": int(len(y_true)),
            "val_accuracy": float(np.mean(fake == (y_true == 1))),
            "val_fpr": float(fake[y_true == 0].mean()), "val_tpr": float(fake[y_true == 1].mean()),
            "called_fake_by_source": {s: float(fake[sources == s].mean()) for s in sorted(set(sources.tolist()))},
            "uncertain_band": [low, high], "val_uncertain": int(uncertain.sum()),
            "val_wrong_uncertain": int((wrong & uncertain).sum()), "val_wrong_certain": int((wrong & ~uncertain).sum())}
