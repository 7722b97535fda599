"""The core of the format-bias audit: can file properties alone tell real from fake?

A detector (ELA above all) can learn how a class's files were stored — format, JPEG quality,
chroma subsampling, size — instead of the image. The audit reads those properties of each file
(as stored, or as the format-controlled protocol re-encodes it) and fits the most trivial
classifier on them: a lookup from the properties to the majority label of the train split,
scored on the balanced test split. A high score means the data has a shortcut.

It lives in `train` so that both `python -m benchmark.audit` (every test set) and the model card
that `python -m convert` writes (the model's own training sources) compute the same thing.
"""
from __future__ import annotations

import collections
import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, JpegImagePlugin
from tqdm import tqdm

from ela import FormatControl, ImageError, decode_rgb, read_image_bytes
from ela.libjpeg import STD_LUMINANCE, quant_table
from train.data import Record, balance, select
from train.metrics import wilson_interval

PROPERTIES = ("format", "quality", "subsampling", "size")
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
STRONG = 0.75  # a shortcut accuracy (or a content ROC AUC, benchmark.audit --content) above this is flagged
QUALITY_TABLES = np.stack([quant_table(STD_LUMINANCE, q) for q in range(1, 101)])  # quality q at index q - 1


def estimate_jpeg_quality(luma_table) -> int:
    """The IJG quality whose scaled standard table (libjpeg's, as Pillow writes it) is closest to
    `luma_table` in natural order (exact for files written by libjpeg-based encoders at a
    standard quality)."""
    distance = np.abs(QUALITY_TABLES - np.asarray(tuple(luma_table)).reshape(8, 8)).sum(axis=(1, 2))
    return 1 + int(np.argmin(distance))


def file_properties(data: bytes, name: str = "<bytes>") -> dict:
    """Format, JPEG quality estimate, chroma subsampling and size of encoded image bytes."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            props = {"format": img.format or "?", "size": f"{img.width}x{img.height}", "quality": "-",
                     "subsampling": "-", "bytes_per_pixel": len(data) / max(1, img.width * img.height)}
            if img.format == "JPEG" and getattr(img, "quantization", None):
                props["quality"] = estimate_jpeg_quality(img.quantization[0])
                props["subsampling"] = SUBSAMPLING.get(JpegImagePlugin.get_sampling(img), "other")
            return props
    except Exception:
        raise ImageError(f"{name}: not an image Pillow can read — remove it or fix the manifest") from None


def record_properties(r: Record, control: FormatControl | None, size: int) -> dict:
    """Properties of the file a model would see: as stored, or as the controlled protocol re-encodes it."""
    data = read_image_bytes(r.path)
    if control is not None:
        data = control.encode(decode_rgb(data, str(r.path)), r.sha256, size)
    return file_properties(data, str(r.path))


def read_properties(records: Sequence[Record], control: FormatControl | None,
                    size: int) -> tuple[dict[Path, dict], list[str]]:
    """The properties of every readable record's file (by path), and the messages of the unreadable ones."""
    props, skipped = {}, []
    for r in tqdm(records, desc="file properties", unit="img", leave=False):
        try:
            props[r.path] = record_properties(r, control, size)
        except (ImageError, OSError) as err:
            skipped.append(str(err))
    return props, skipped


def shortcut_accuracy(train: list[tuple[tuple, int]], test: list[tuple[tuple, int]]) -> dict:
    """Lookup classifier: signature → majority train label (unseen → overall majority)."""
    votes: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for key, y in train:
        votes[key][y] += 1
    overall = collections.Counter(y for _, y in train).most_common(1)[0][0] if train else 1
    correct = sum((votes[key].most_common(1)[0][0] if key in votes else overall) == y for key, y in test)
    low, high = wilson_interval(correct, len(test))
    return {"n": len(test), "accuracy": correct / len(test) if test else float("nan"), "ci95": [low, high]}


def shortcuts(records: Sequence[Record], props: dict[Path, dict], sources: Sequence[str]) -> dict[str, dict]:
    """The lookup classifier's result for all properties together and for each alone ("format",
    "format+quality+subsampling+size", ...): fitted on the train split of `sources`, scored on
    their balanced test split. Empty when either split has no readable files."""
    train = [r for r in select(records, sources, ["train"]) if r.path in props]
    test = [r for r in balance(select(records, sources, ["test"])) if r.path in props]
    if not train or not test:
        return {}
    result = {}
    for keys in [PROPERTIES] + [(p,) for p in PROPERTIES]:
        sig = lambda r: tuple(props[r.path][k] for k in keys)  # noqa: E731
        result["+".join(keys)] = shortcut_accuracy([(sig(r), r.y) for r in train], [(sig(r), r.y) for r in test])
    return result


def strongest(result: dict[str, dict]) -> tuple[str, dict]:
    """The property combination of a `shortcuts` result with the highest accuracy, and its metrics."""
    return max(result.items(), key=lambda item: item[1]["accuracy"])
