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
"""
from __future__ import annotations

import dataclasses

import tf_keras

from train.configs import with_fields
from train.experts import logit_layer, single_tail, tail_sources
from train.run_folder import Run, RunError


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
