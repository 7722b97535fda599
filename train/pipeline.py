"""Training input: the views a run trains on (`ViewPool`).

Each view of the training images (decode, then crop, rescale, JPEG re-save, ... at each image's
own resolution: train/augment.py) is Pillow work, and Pillow releases the GIL while it decodes,
resizes, filters and encodes, so the threads of `preprocess_records` keep every core busy (a view
of the 3,087 training images of ../shared/data: 12 s on 1.7 cores, against 27 s on one core
through the tf.data pipeline this replaced, whose `tf.numpy_function` ran one call at a time:
docs/results.md §5, session 21). While the trunk computes one view's activations, the next view
is already being decoded. Each image of a view is the pure function of (seed, view, file content)
that `train.augment` defines, computed by the same `Preprocessing.load`: how many threads there
are and when they finish change no byte (tests/test_view_pool.py).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ela import Preprocessing
from train.augment import Augmentation, augmented
from train.data import Record, Skipped, preprocess_records


class ViewPool:
    """Views 0..views-1 of `records` through `prep` (after view v of `augmentation`, if any),
    each decoded by `train.data.preprocess_records`' threads: `view(i)` returns view i and starts
    view i + 1 in the background, so at most two views are in memory at once."""

    def __init__(self, records: Sequence[Record], prep: Preprocessing, augmentation: Augmentation | None,
                 seed: int, views: int, desc: str, workers: int | None = None):
        self.records, self.prep, self.augmentation = list(records), prep, augmentation
        self.seed, self.views, self.desc, self.workers = seed, views, desc, workers
        self.pending: dict[int, Future] = {}
        self.background = ThreadPoolExecutor(1, thread_name_prefix="views")  # one view after the other

    def _start(self, index: int) -> None:
        if index >= self.views or index in self.pending:
            return
        loader = augmented(self.prep, self.augmentation, self.seed, index) if self.augmentation else self.prep
        label = self.desc if self.views == 1 else f"{self.desc}, view {index + 1}/{self.views}"
        self.pending[index] = self.background.submit(preprocess_records, self.records, loader, label, self.workers)

    def view(self, index: int) -> tuple[np.ndarray, list[Record], list[Skipped]]:
        """(uint8 images (N, S, S, 3) of the readable records, those records, the unreadable files
        as `Skipped`), in record order."""
        if not 0 <= index < self.views:
            raise IndexError(f"view {index} of {self.views}")
        self._start(index)
        result = self.pending.pop(index)
        self._start(index + 1)
        x, _, kept, skipped = result.result()
        return x, kept, skipped
