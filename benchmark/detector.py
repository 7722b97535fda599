"""The verdict on one's own photos, as a Python API: `Detector("m.tflite").predict("x.jpg")`.

The detector reads everything it needs from the model's own metadata — input size, ELA,
format control, in-graph ELA, labels, threshold — so a photo is always preprocessed the way the
model was trained. An unreadable photo is a `Prediction` with `error` set, never an exception,
so a folder with one bad file still gets a verdict for every other one. With `faces=True` each
face is found (benchmark.faces), cropped like a training face and judged on its own. With
`probes=True` the photo is judged again under each invariance probe (benchmark.invariance:
re-saves, rescales, a crop, the mirror image, greyscale — changes that must not change a
verdict), and the verdict says under which it changes: a verdict that a PNG re-save or a grey
copy would reverse is one to doubt, whatever its p(fake).
"""
from __future__ import annotations

import collections
import itertools
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from benchmark.faces import face_crop, find_faces
from benchmark.invariance import PROBES, decision_changed
from convert.metadata import ModelInfo, read_model_bytes, read_model_info
from convert.runtime import TfliteModel
from ela import ImageError, read_image

AHEAD = 64  # photos in flight at most, so memory does not grow with the number of photos


@dataclass(frozen=True)
class Face:
    """One face in a photo and its verdict: box (x, y, w, h) in the photo's pixels (EXIF rotation
    applied), the face detector's confidence, and the model's p_fake and label for its crop."""

    box: tuple[int, int, int, int]
    confidence: float
    p_fake: float
    label: str


@dataclass(frozen=True)
class Prediction:
    """One photo's verdict: label "real"/"fake" (fake when p_fake >= threshold), or error set
    (and label and p_fake None) when the file could not be used.

    faces is None unless faces were looked for; then it lists them, `scored` says "faces"
    (label and p_fake are those of the most fake face) or "whole image" (no face was found).
    unsteady is None unless the probes were run (and for an error); then it names those under
    which the label changes (empty: the verdict held under every probe). uncertain is None unless
    the model carries a band of uncertain verdicts (ModelInfo.uncertain_band; and for an error);
    then it says whether p_fake lies inside it, close to the threshold."""

    path: str
    label: str | None
    p_fake: float | None
    threshold: float
    error: str | None = None
    faces: tuple[Face, ...] | None = None
    scored: str | None = None
    unsteady: tuple[str, ...] | None = None
    uncertain: bool | None = None

    def to_dict(self) -> dict:
        row = asdict(self)
        if self.faces is None:
            del row["faces"], row["scored"]
        for optional in ("unsteady", "uncertain"):
            if row[optional] is None:
                del row[optional]
        return row


class Detector:
    """A FakeLens .tflite ready to judge photos.

    threads: photos judged at once (default: the machine's cores). Each worker thread reads,
    decodes, preprocesses and scores whole photos on an interpreter of its own with one thread
    (Pillow and the interpreter release the GIL), so the cores never wait for one another.
    """

    def __init__(self, model: str | Path, threads: int | None = None):
        self.path = Path(model)
        self.info: ModelInfo = read_model_info(self.path)
        self.threads = threads or os.cpu_count() or 1
        self.prep = self.info.input_preprocessing
        self._content = read_model_bytes(self.path)
        self._idle: queue.SimpleQueue[TfliteModel] = queue.SimpleQueue()
        self._idle.put(TfliteModel(self._content))  # a model the interpreter cannot load fails here, not later

    @property
    def threshold(self) -> float:
        return self.info.threshold

    def _label(self, p_fake: float) -> str:
        return self.info.labels[1] if p_fake >= self.threshold else self.info.labels[0]

    def scores(self, images: list[np.ndarray]) -> list[float]:
        """p(fake) of preprocessed images, on an interpreter that no other thread uses meanwhile."""
        try:
            model = self._idle.get_nowait()
        except queue.Empty:
            model = TfliteModel(self._content)
        try:
            return [float(p) for p in model.probabilities(np.stack(images))[:, 1]]
        finally:
            self._idle.put(model)

    def _judge(self, path: str, faces: bool, probes: bool) -> Prediction:
        try:
            img, sha256 = read_image(path)
            found = find_faces(img) if faces else []
            judged_images = [face_crop(img, f) for f in found] or [img]  # the faces, or the whole photo
            p_fakes = self.scores([self.prep.apply(part, sha256) for part in judged_images])
            unsteady = self._unsteady(judged_images, sha256, max(p_fakes)) if probes else None
        except ImageError as err:
            return Prediction(path, None, None, self.threshold, str(err), faces=() if faces else None)
        uncertain = self.info.is_uncertain(max(p_fakes))
        if not faces:
            return Prediction(path, self._label(p_fakes[0]), p_fakes[0], self.threshold, unsteady=unsteady,
                              uncertain=uncertain)
        if not found:
            return Prediction(path, self._label(p_fakes[0]), p_fakes[0], self.threshold, faces=(),
                              scored="whole image", unsteady=unsteady, uncertain=uncertain)
        judged = tuple(Face(f.box, f.confidence, p, self._label(p)) for f, p in zip(found, p_fakes))
        worst = max(judged, key=lambda face: face.p_fake)
        return Prediction(path, worst.label, worst.p_fake, self.threshold, faces=judged, scored="faces",
                          unsteady=unsteady, uncertain=uncertain)

    def _unsteady(self, judged_images: list, sha256: str, p_fake: float) -> tuple[str, ...]:
        """The probes under which the photo's label (that of its most fake judged image) changes."""
        n = len(judged_images)
        p = self.scores([self.prep.apply(change(part), sha256) for change in PROBES.values() for part in judged_images])
        return tuple(name for i, name in enumerate(PROBES)
                     if decision_changed(p_fake, max(p[i * n:(i + 1) * n]), self.threshold))

    def predict(self, path: str | Path, faces: bool = False, probes: bool = False) -> Prediction:
        """The verdict on one photo file; with `faces`, on each face in it; with `probes`, also
        the invariance probes under which it changes."""
        return self._judge(str(path), faces, probes)

    def predict_many(self, paths: Iterable[str | Path], faces: bool = False,
                     probes: bool = False) -> Iterator[Prediction]:
        """Verdicts in the order of `paths`, `threads` photos at a time, at most AHEAD of them
        in flight."""
        paths = iter(str(p) for p in paths)
        with ThreadPoolExecutor(self.threads) as pool:
            pending = collections.deque(pool.submit(self._judge, p, faces, probes)
                                        for p in itertools.islice(paths, AHEAD))
            while pending:
                done = pending.popleft().result()
                following = next(paths, None)
                if following is not None:
                    pending.append(pool.submit(self._judge, following, faces, probes))
                yield done
