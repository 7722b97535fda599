"""Image changes that should not change what a photo *is*: re-saves, rescales, crops, flips,
greyscale, blur, colour grading — on the decoded RGB image, before a model's own preprocessing.

One definition for the two places that use them: training draws them at random as augmentation
(`train.augment`), so that file format, resolution and colour stop separating the classes, and
the benchmark applies them one at a time as robustness conditions and invariance probes, to
check that decisions do not move when nothing meaningful changed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from ela.images import read_image
from ela.preprocess import RESAMPLE, Preprocessing

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # Pillow's JPEG `subsampling` codes


def jpeg_resave(img: Image.Image, quality: int, subsampling: str = "4:2:0") -> Image.Image:
    """`img` saved as baseline JPEG at `quality` with the given chroma subsampling, decoded again."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling])
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def png_resave(img: Image.Image) -> Image.Image:
    """`img` through a lossless PNG file: the same pixels in another container."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def rescale(img: Image.Image, factor: float) -> Image.Image:
    """`img` resized by `factor` on both sides (at least 1 pixel), with the resampling of
    preprocessing."""
    return img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), RESAMPLE)


def crop(img: Image.Image, fraction: float, fx: float = 0.5, fy: float = 0.5) -> Image.Image:
    """The `fraction`-sized window of `img` (both sides), placed at (fx, fy) of the free room
    (0.5, 0.5: the centre). No resampling: the pixels keep their native resolution."""
    w, h = max(1, round(img.width * fraction)), max(1, round(img.height * fraction))
    left, top = round((img.width - w) * fx), round((img.height - h) * fy)
    return img.crop((left, top, left + w, top + h))


def hflip(img: Image.Image) -> Image.Image:
    return ImageOps.mirror(img)


def greyscale(img: Image.Image) -> Image.Image:
    """Luma in all three channels: what a black-and-white photo decodes to."""
    return img.convert("L").convert("RGB")


def blur(img: Image.Image, radius: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def colour_grade(img: Image.Image, saturation: float, contrast: float, brightness: float,
                 gains: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Image.Image:
    """`img` colour-graded as photo editors and stock agencies do: saturation, contrast and
    brightness factors (1: unchanged) and a white-balance gain per RGB channel."""
    img = ImageEnhance.Color(img).enhance(saturation)
    img = ImageEnhance.Contrast(img).enhance(contrast)
    img = ImageEnhance.Brightness(img).enhance(brightness)
    if gains == (1.0, 1.0, 1.0):
        return img
    pixels = np.asarray(img, np.float32) * np.asarray(gains, np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class Changed:
    """A preprocessing with a change of the decoded image in front of it. It offers the `load`
    and `input_size` of `Preprocessing`, so the training pipeline and the benchmark's image
    loaders run it unchanged, with the same skipping of unreadable files.

    change: (decoded RGB image, sha256 of the file) → changed image; the hash lets a random
        change be a pure function of the image (training augmentation) and keeps the file's own
        hash for the preprocessing (the format-controlled protocol draws its quality from it).
    """

    prep: Preprocessing
    change: Callable[[Image.Image, str], Image.Image]

    @property
    def input_size(self) -> int:
        return self.prep.input_size

    def load(self, path: str | Path) -> np.ndarray:
        img, sha = read_image(path)
        return self.prep.apply(self.change(img, sha), sha)
