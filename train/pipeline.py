"""Training input: the views a run trains on (`ViewPool`), and a tf.data pipeline with a cache
(`make_dataset`, which `python -m train.pipeline_benchmark` measures).

A run's views (`ViewPool`): each view of the training images (decode, then crop, rescale, JPEG
re-save, ... at each image's own resolution: train/augment.py) is Pillow work, and Pillow
releases the GIL while it decodes, resizes, filters and encodes, so the threads of
`preprocess_records` keep every core busy (a view of the 3,087 training images of
../shared/data: 12 s on 1.7 cores, against 27 s on one core through tf.data, whose
`tf.numpy_function` runs one call at a time: docs/results.md §5, session 21). While the trunk
computes one view's activations, the next view is already being decoded. Each image of a view is
the pure function of (seed, view, file content) that `train.augment` defines, computed by the
same `Preprocessing.load`: how many threads there are and when they finish change no byte
(tests/test_view_pool.py compares the views with the tf.data pipeline's).

The tf.data pipeline (`make_dataset`):

Decoding and ELA dominate the input cost, and a plain loop over files does them one image at a
time, every epoch, while the model waits. Here each image still goes through the one `ela/`
definition (`Preprocessing.load`, called through `tf.numpy_function`, which in practice keeps
one core busy however many calls run in parallel: see above), the results are cached so later
epochs skip the work, and batches are prefetched while the model trains.

Unreadable files are per-image problems, never fatal: the mapped function returns a flag with
each image, a filter drops the flagged ones (before the cache, so they cost nothing later), and
each dropped file is reported once as a `Skipped` (the same reason text `preprocess_records`
gives) in the caller's `skipped` list, in record order. The list is complete once the first
full pass has run. A file cache keeps a sidecar JSON of its skipped files, so a later run that
reuses the cache (and never decodes) reports them too.

Cache files are named by a hash of the preprocessing, the pipeline version and every record
(path, label, content sha256, in order), so changing any of them uses a new file instead of
stale images. tf.data writes a cache file only when a pass reaches the end (a partial pass is
discarded), and two processes must not fill the same cache file at the same time (its lock file
says so; `check_no_writer` turns that into an error that says what to do).

A process that exits while an iterator is still preprocessing (an uncaught exception in the
middle of an epoch) can hang at interpreter shutdown, a TensorFlow limitation of Python
functions in tf.data: exhaust or drop iterators before exiting, as `train.cli.run_main` does by
catching errors.
"""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from absl import logging

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf

from ela import ImageError, Preprocessing
from ela.perturb import Changed
from train.augment import Augmentation, augmented
from train.data import Record, Skipped, preprocess_records
from train.io import atomic_write_json

AUTOTUNE = tf.data.AUTOTUNE
CACHES = ("auto", "memory", "file", "none")
MEMORY_CACHE_LIMIT = 2 << 30  # bytes of preprocessed images 'auto' keeps in RAM (and the shuffle buffer's cap)
PIPELINE_VERSION = 1  # part of the cache key: bump when the cached elements change meaning


def cache_key(records: Sequence[Record], prep: Preprocessing) -> str:
    """Hash of everything a cached element depends on: preprocessing and the ordered records."""
    h = hashlib.sha256(json.dumps({"pipeline": PIPELINE_VERSION, "preprocessing": prep.to_dict()},
                                  sort_keys=True).encode())
    for r in records:
        h.update(f"\n{r.sha256}\t{r.y}\t{r.path}".encode())
    return h.hexdigest()[:24]


def choose_cache(records: Sequence[Record], prep: Preprocessing, cache: str = "auto",
                 cache_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """Resolve `cache` to ('memory' | 'file' | 'none', cache file prefix or None).

    'auto' keeps the images in memory when n × S × S × 3 bytes fit MEMORY_CACHE_LIMIT, else
    uses a file in `cache_dir`, or no cache when there is no cache_dir.
    """
    if cache not in CACHES:
        raise ValueError(f"cache must be one of {CACHES}, got {cache!r}")
    if cache == "auto":
        fits = len(records) * prep.input_size ** 2 * 3 <= MEMORY_CACHE_LIMIT
        cache = "memory" if fits else "file" if cache_dir else "none"
    if cache != "file":
        return cache, None
    if not cache_dir:
        raise ValueError("cache='file' needs a cache_dir — pass a folder for the cache files")
    return "file", Path(cache_dir) / f"pipeline_{cache_key(records, prep)}.cache"


class _SkipLog:
    """Thread-safe: each skipped file once, kept in record order in the caller's list and, for
    a file cache, mirrored to the sidecar JSON next to it."""

    def __init__(self, out: list[Skipped], sidecar: Path | None):
        self.out, self.sidecar = out, sidecar
        self.by_index: dict[int, Skipped] = {}
        self.lock = threading.Lock()

    def add(self, index: int, skipped: Skipped) -> None:
        with self.lock:
            if index in self.by_index:
                return
            logging.warning("skipped %s", skipped.reason)
            self.by_index[index] = skipped
            self.out[:] = [self.by_index[i] for i in sorted(self.by_index)]
            if self.sidecar:
                atomic_write_json(self.sidecar, [{"index": i, "path": str(s.path), "reason": s.reason}
                                                 for i, s in sorted(self.by_index.items())])

    def load_sidecar(self) -> None:
        """Report the skips of a finished cache file, whose images will never be decoded again."""
        if self.sidecar and self.sidecar.is_file():
            for row in json.loads(self.sidecar.read_text()):
                self.by_index[row["index"]] = Skipped(Path(row["path"]), row["reason"])
            self.out[:] = [self.by_index[i] for i in sorted(self.by_index)]


def check_no_writer(cache_file: Path) -> None:
    """Fail with what to do, before tf.data fails with a traceback, when a lock of tf.data's
    file cache exists: another run is filling the same cache, or a killed run (SIGKILL, out of
    memory) left its lock behind; an ordinary interruption removes it."""
    locks = sorted(cache_file.parent.glob(f"{cache_file.name}_*.lockfile"))
    if locks:
        raise RuntimeError(f"{locks[0]}: another run is filling this cache, or a killed run left this lock — if no "
                           f"other run uses {cache_file.parent}, delete {cache_file.name}_* there")


def make_dataset(records: Sequence[Record], prep: Preprocessing | Changed, batch_size: int,
                 parallel_calls: int = AUTOTUNE, cache: str = "auto", cache_dir: str | Path | None = None,
                 shuffle_seed: int | None = None, repeat: bool = False,
                 skipped: list[Skipped] | None = None) -> tf.data.Dataset:
    """Batches (uint8 images (B, S, S, 3), int64 labels (B,)) of `records` through `prep` (a
    `Preprocessing`, or a `Changed` one, e.g. one view of training augmentation, which is never
    cached to a file).

    parallel_calls: images preprocessed at once (AUTOTUNE or an int >= 1); the output order
        never depends on it.
    cache: 'auto' | 'memory' | 'file' | 'none' (see `choose_cache`); cache_dir holds cache files.
    shuffle_seed: None keeps record order; a seed shuffles each epoch, in the same sequence of
        orders for the same seed.
    repeat: repeat the epochs forever (batches never straddle two epochs).
    skipped: a list to receive a `Skipped` for each unreadable file (see the module docstring).
    """
    if not (parallel_calls == AUTOTUNE or (isinstance(parallel_calls, int) and parallel_calls >= 1)):
        raise ValueError(f"parallel_calls must be AUTOTUNE or an integer >= 1, got {parallel_calls!r}")
    records = list(records)
    if cache not in CACHES:
        raise ValueError(f"cache must be one of {CACHES}, got {cache!r}")
    if isinstance(prep, Changed):  # no cache key: a change is code, and a view is wanted once
        if cache == "file":
            raise ValueError("a changed (e.g. augmented) preprocessing cannot use cache='file' — use 'memory' or 'none'")
        kind, cache_file = ("none" if cache == "auto" else cache), None
    else:
        kind, cache_file = choose_cache(records, prep, cache, cache_dir)
    log = _SkipLog(skipped if skipped is not None else [],
                   cache_file.with_suffix(".skipped.json") if cache_file else None)
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        if Path(f"{cache_file}.index").is_file():
            log.load_sidecar()
        else:
            check_no_writer(cache_file)
    size = prep.input_size
    labels = tf.constant([r.y for r in records], tf.int64)

    def load(index: np.int64) -> tuple[np.ndarray, bool]:
        record = records[int(index)]
        try:
            return prep.load(record.path), np.bool_(True)
        except ImageError as err:
            log.add(int(index), Skipped(record.path, str(err)))
            return np.zeros((size, size, 3), np.uint8), np.bool_(False)

    def decode(index):
        image, ok = tf.numpy_function(load, [index], (tf.uint8, tf.bool), stateful=True, name="preprocess")
        image.set_shape((size, size, 3))
        ok.set_shape(())
        return image, tf.gather(labels, index), ok

    def readable(image, label, ok):
        return ok

    def without_flag(image, label, ok):
        return image, label

    ds = tf.data.Dataset.range(len(records)).map(decode, num_parallel_calls=parallel_calls, deterministic=True)
    ds = ds.filter(readable).map(without_flag)
    if kind == "memory":
        ds = ds.cache()
    elif kind == "file":
        ds = ds.cache(str(cache_file))
    if shuffle_seed is not None:
        buffer = max(1, min(len(records), MEMORY_CACHE_LIMIT // (size * size * 3)))
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(AUTOTUNE)


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
