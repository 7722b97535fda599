"""Model scores keyed by image path: each model scores the images of its preprocessing once, and
every table (accuracy, robustness, quantisation damage) looks its records up in the same scores,
so no two sections can disagree about what a model said about an image."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from convert.runtime import TfliteModel
from ela import Preprocessing
from train.data import Record


def prep_key(prep: Preprocessing) -> str:
    """One string per distinct preprocessing: models with equal keys can share preprocessed images."""
    return json.dumps(prep.to_dict(), sort_keys=True)


def score_images(model: TfliteModel, images: dict[Path, np.ndarray]) -> dict[Path, float]:
    """p(fake) for every image, keyed by its path."""
    paths = list(images)
    if not paths:
        return {}
    probs = model.probabilities(np.stack([images[p] for p in paths]))[:, 1]
    return dict(zip(paths, probs.astype(np.float64).tolist()))


def labelled(records: Sequence[Record], p_fake: dict[Path, float]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the records that have a score (unreadable images have none)."""
    kept = [r for r in records if r.path in p_fake]
    return np.array([r.y for r in kept], np.int64), np.array([p_fake[r.path] for r in kept], np.float64)
