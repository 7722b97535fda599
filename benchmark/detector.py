"""The verdict on one's own photos, as a Python API: `Detector("m.tflite").predict("x.jpg")`.

The detector reads everything it needs from the model's own metadata — input size, ELA,
format control, in-graph ELA, labels, threshold — so a photo is always preprocessed the way the
model was trained. An unreadable photo is a `Prediction` with `error` set, never an exception,
so a folder with one bad file still gets a verdict for every other one.
"""
from __future__ import annotations

import collections
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from convert.metadata import ModelInfo, read_model_info
from convert.runtime import TfliteModel
from ela import ImageError

AHEAD = 64  # photos decoded ahead of the model at most


@dataclass(frozen=True)
class Prediction:
    """One photo's verdict: label "real"/"fake" (fake when p_fake >= threshold), or error set
    (and label and p_fake None) when the file could not be used."""

    path: str
    label: str | None
    p_fake: float | None
    threshold: float
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Detector:
    """A FakeLens .tflite ready to judge photos.

    threads: interpreter threads and decoding threads (default: the machine's cores); decoding
    and preprocessing run in a thread pool (Pillow releases the GIL) while the interpreter scores
    the previous photos.
    """

    def __init__(self, model: str | Path, threads: int | None = None):
        self.path = Path(model)
        self.info: ModelInfo = read_model_info(self.path)
        self.threads = threads or os.cpu_count() or 1
        self.model = TfliteModel(self.path, num_threads=self.threads)
        self.prep = self.info.input_preprocessing

    @property
    def threshold(self) -> float:
        return self.info.threshold

    def _verdict(self, path: str, p_fake: float) -> Prediction:
        label = self.info.labels[1] if p_fake >= self.threshold else self.info.labels[0]
        return Prediction(path, label, float(p_fake), self.threshold)

    def _load(self, path: str) -> np.ndarray | ImageError:
        try:
            return self.prep.load(path)
        except ImageError as err:
            return err

    def predict(self, path: str | Path) -> Prediction:
        """The verdict on one photo file."""
        return next(self.predict_many([path]))

    def predict_many(self, paths: Iterable[str | Path]) -> Iterator[Prediction]:
        """Verdicts in the order of `paths`: photos are decoded in parallel, at most AHEAD of
        them ahead of the model, so memory does not grow with the number of photos."""
        paths = iter(str(p) for p in paths)
        with ThreadPoolExecutor(self.threads) as pool:
            pending = collections.deque((p, pool.submit(self._load, p)) for p in itertools.islice(paths, AHEAD))
            while pending:
                path, future = pending.popleft()
                following = next(paths, None)
                if following is not None:
                    pending.append((following, pool.submit(self._load, following)))
                image = future.result()
                if isinstance(image, ImageError):
                    yield Prediction(path, None, None, self.threshold, str(image))
                else:
                    yield self._verdict(path, self.model.probabilities(image[None])[0, 1])
