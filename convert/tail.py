"""`python -m convert --tail SOURCE`: one tail of an experts run (train/experts.py) as the run it
stands for, the run trained on the real sources and SOURCE's fakes only.

Why: each tail trains exactly as that run would (same seed, views, batches and loss; a test
checks it bit for bit), so with two fake sources an experts run trained once already holds both
leave-one-generator-out runs: exporting the tail of one source is the run without the other.
The narrowed run says so everywhere an export reads it: its sources (calibration, QAT, the
threshold's validation images, the metadata's training sources), its data counts, its
validation result (the tail's own) and the training command that reproduces it.

`--tail_offset SOURCE=LOGIT` goes the other way: it keeps the joined model and raises one tail's
logit before the maximum. Why: the maximum spends a photo's false-positive budget on whichever
tail scores real photos highest. In `fakelens` that is the GAN tail (validation reals about -4.7
against the diffusion tail's -11.9), so an image of a never-trained diffusion model, which the
diffusion tail scores well above the reals but below the GAN tail's reals, ranks among the reals
(docs/results.md, session 25, rule S). An offset folded into that tail's logit bias gives its
evidence weight, with no change to the graph; the threshold is chosen after it.

`--tail_offset auto` chooses the offsets on the run's own validation split (`choose_offsets`), so
that a user's experts run, whose tails are not ../shared/data's, gets them without a hand-picked
constant. It is rule S of session 25 written for N tails: raise each tail that scores real photos
lower than the highest one, step by step, for as long as the threshold re-chosen after it keeps
every fake source's catches and the reals' false positives (as stored and after greyscale) within
one image of the plain maximum's.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tf_keras

from ela.perturb import Changed, greyscale
from train.configs import with_fields
from train.data import DataError, Record, preprocess_records, select
from train.experts import logit_layer, single_tail, tail_logits_model, tail_sources
from train.metrics import threshold_for
from train.run_folder import Run, RunError

OFFSET_STEP = 0.5  # the search's step, in logits
TOLERANCE = 1  # images a step may cost on each criterion, against the plain maximum
REAL_LEVEL = 95  # the percentile of a tail's logits on real photos that says how high it scores them


def checked_tails(run: Run, sources, flag: str) -> list[str]:
    """The tails of `run`'s model, or a RunError naming `flag` if it is not an experts run or has no
    tail for one of `sources`."""
    tails = tail_sources(run.model)
    if not tails:
        raise RunError(f"{run.folder}: {flag} needs an experts run (trained with --experts on two or more fake "
                       f"sources); this run has one classifier — export it without {flag}")
    unknown = sorted(set(sources) - set(tails))
    if unknown:
        raise RunError(f"{run.folder}: {flag} names no tail {', '.join(map(repr, unknown))}; "
                       f"its tails are {', '.join(tails)}")
    return tails


def tail_run(run: Run, source: str) -> Run:
    """`run` (an experts run) narrowed to its tail `source`, or a RunError saying why it cannot be."""
    tails = checked_tails(run, [source], "--tail")
    model = single_tail(run.model, source)
    others = tuple(s for s in tails if s != source)
    data = run.config.data
    config = with_fields(run.config, sources=tuple(s for s in data.sources if s not in others),
                         exclude_sources=tuple(data.exclude_sources) + others)
    counts = {key: n for key, n in run.summary["data"].get("counts", {}).items()
              if key.partition("/")[0] not in others}
    summary = {key: value for key, value in run.summary.items() if key != "experts"}
    summary.update(config=config.to_dict(), data={**run.summary["data"], "counts": counts},
                   result=run.summary["experts"][source])
    return Run(run.folder, config, summary, model, tail=source)


def offset_tails(run: Run, offsets: dict[str, float]) -> Run:
    """`run` (an experts run) with each tail in `offsets` scoring its logit plus the offset before
    the maximum; a copy, `run` is left as it was. A RunError if a source is not one of its tails."""
    checked_tails(run, offsets, "--tail_offset")
    model = tf_keras.models.clone_model(run.model)
    model.set_weights(run.model.get_weights())
    for source, offset in offsets.items():
        layer = model.get_layer(logit_layer(source))
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + offset])
    return dataclasses.replace(run, model=model)


def tail_logits(model: tf_keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each tail's fake-minus-real logit (before any offset and the maximum) on images `x`."""
    outputs = tail_logits_model(model).predict(x, batch_size=32, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]  # Keras returns one output as an array
    return {s: z[:, 0].astype(np.float64) for s, z in zip(tail_sources(model), outputs)}


def _counts(stored, grey, offsets, y, sources, target) -> dict:
    """What the joined score max(z_k + offset_k) does at the threshold `target` chooses on it:
    images caught per fake source, reals called fake as stored and after greyscale."""
    joined = np.max([z + offsets.get(s, 0.0) for s, z in stored.items()], axis=0)
    joined_grey = np.max([z + offsets.get(s, 0.0) for s, z in grey.items()], axis=0)
    try:
        threshold = threshold_for(y, joined, target, sources)
    except ValueError:  # too many reals share the top scores: no threshold keeps the target
        return {"offsets": dict(offsets), "threshold_logit": None}
    fake, fake_grey = joined >= threshold, joined_grey >= threshold
    caught = {s: int(fake[sources == s].sum()) for s in sorted(set(sources[y == 1].tolist()))}
    return {"offsets": dict(offsets), "threshold_logit": float(threshold), "caught": caught,
            "reals_fake": int(fake[y == 0].sum()), "reals_fake_grey": int(fake_grey[y == 0].sum())}


def _within(counts: dict, base: dict) -> bool:
    return (counts["threshold_logit"] is not None
            and all(n >= base["caught"][s] - TOLERANCE for s, n in counts["caught"].items())
            and counts["reals_fake"] <= base["reals_fake"] + TOLERANCE
            and counts["reals_fake_grey"] <= base["reals_fake_grey"] + TOLERANCE)


def choose_offsets(stored: dict[str, np.ndarray], grey: dict[str, np.ndarray], y: np.ndarray,
                   sources: np.ndarray, target: str) -> tuple[dict[str, float], list[dict]]:
    """Offsets for the tails (logits `stored`, and `grey` after greyscale, per tail over validation
    images with labels `y` and `sources`) and every step tried.

    The tail that scores real photos highest (REAL_LEVEL percentile) keeps 0: the plain maximum
    already spends the false-positive budget on it. Each other tail, lowest first, is raised by
    OFFSET_STEP while the joined score, at the threshold `target` re-chooses, keeps each fake
    source's catches, the reals called fake and the greyscale reals called fake within TOLERANCE
    images of the plain maximum's; it keeps the last step that did, and the search stops at its
    first failing step or at the gap between its real-photo level and the highest (rounded up to a
    step), past which it would be the tail that scores reals highest."""
    real = y == 0
    level = {s: float(np.percentile(z[real], REAL_LEVEL)) for s, z in stored.items()}
    top = max(level.values())
    base = _counts(stored, grey, {}, y, sources, target)
    offsets, steps = {}, [base]
    if base["threshold_logit"] is None:  # nothing to keep: the export's own threshold says why
        return offsets, steps
    for source in sorted(level, key=level.get):
        if level[source] == top:
            continue
        offsets[source] = 0.0
        for k in range(1, math.ceil((top - level[source]) / OFFSET_STEP) + 1):
            counts = _counts(stored, grey, {**offsets, source: k * OFFSET_STEP}, y, sources, target)
            counts["passes"] = _within(counts, base)
            steps.append(counts)
            if not counts["passes"]:
                break
            offsets[source] = k * OFFSET_STEP
    return offsets, steps


def auto_offsets(run: Run, records: list[Record], target: str) -> tuple[dict[str, float], list[dict]]:
    """`choose_offsets` on `run`'s validation images of its own sources (from `records`), scored by
    the run's model as stored and greyscale; a RunError or DataError saying why it cannot be."""
    checked_tails(run, [], "--tail_offset auto")
    val = select(records, run.config.data.sources, ["val"])
    prep = run.config.preprocessing()
    x, y, kept, _ = preprocess_records(val, prep, "validation images (tail offsets)")
    if len(set(y.tolist())) < 2:
        raise DataError(f"--tail_offset auto needs real and fake validation images of "
                        f"{', '.join(run.config.data.sources)}")
    grey, *_ = preprocess_records(kept, Changed(prep, lambda img, sha: greyscale(img)),
                                  "greyscale validation images (tail offsets)")
    sources = np.array([r.source for r in kept])
    return choose_offsets(tail_logits(run.model, x), tail_logits(run.model, grey), y, sources, target)
