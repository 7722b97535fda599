"""Training-time augmentation against the shortcuts of the data, drawn per image and epoch.

Real photos and fakes arrive from different collections with their own size, compression and
colour; a detector learns whatever separates the classes most cheaply. Every training image, of
either class, is therefore given the same random chance of each change before the model's own
preprocessing (at the image's own resolution: resizing first would wash out the traces a
generator leaves): a crop, a rescale, a JPEG re-save with a random quality and chroma
subsampling (or none), a colour grade, a flip, greyscale, a mild blur. No cue is then owned
by one class.

The draws are a pure function of (seed, view, image content): every worker, every resumed run
and every rerun sees the same augmented image for the same epoch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from ela import Preprocessing
from ela.perturb import SUBSAMPLING, Changed, blur, colour_grade, crop, greyscale, hflip, jpeg_resave, rescale


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges of each change (applied in this order).

    views: distinct augmented versions of each training image; epoch e trains on view e % views
        (each view's frozen-trunk activations are computed once, so epochs stay cheap).
    crop_p, crop_min: a window of a side fraction in [crop_min, 1] at a random place.
    patch_p, patch_side: instead of that crop and the rescale, a square window of a side drawn
        uniformly from patch_side pixels (at most the shorter side) at a random place, at the
        image's own resolution: the model then sees its pixels nearly 1:1, as it sees a close-up
        of a large photo, where the whole-image views only ever show them shrunk (SD 2.1's 768
        px by 3.4x). Off by default.
    rescale_p, rescale_range: resize by a factor drawn log-uniformly from the range, never below
        min_side pixels on the short side.
    jpeg_p, jpeg_quality: re-save as JPEG with quality drawn uniformly from the range and a
        random chroma subsampling; jpeg_twice_p: then once more (a shared-then-reshared photo).
    flip_p, grey_p, blur_p (radius uniform in blur_radius).
    colour_p, colour_range, gain_range: a colour grade (before the JPEG re-save, as an editor
        exports): saturation, contrast and brightness factors each drawn log-uniformly from
        colour_range, and a white-balance gain per channel from gain_range. Stock photos are
        graded and generators have their own palette: the grade must not be the cue.
    """

    views: int = 4
    crop_p: float = 0.6
    crop_min: float = 0.8
    patch_p: float = 0.0
    patch_side: tuple[int, int] = (224, 336)
    rescale_p: float = 0.6
    rescale_range: tuple[float, float] = (0.4, 1.6)
    min_side: int = 64
    jpeg_p: float = 0.7
    jpeg_quality: tuple[int, int] = (50, 100)
    jpeg_twice_p: float = 0.2
    flip_p: float = 0.5
    grey_p: float = 0.3
    blur_p: float = 0.15
    blur_radius: tuple[float, float] = (0.3, 1.5)
    colour_p: float = 0.0
    colour_range: tuple[float, float] = (0.7, 1.4)
    gain_range: tuple[float, float] = (0.92, 1.08)

    def __post_init__(self):
        if not (isinstance(self.views, int) and self.views >= 1):
            raise ValueError(f"augmentation views must be an integer >= 1, got {self.views!r}")
        for name in ("crop_p", "patch_p", "rescale_p", "jpeg_p", "jpeg_twice_p", "flip_p", "grey_p", "blur_p",
                     "colour_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augmentation {name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.crop_min <= 1.0:
            raise ValueError(f"augmentation crop_min must be in (0, 1], got {self.crop_min}")
        if not 1 <= self.patch_side[0] <= self.patch_side[1]:
            raise ValueError(f"augmentation patch_side must be 1 <= low <= high pixels, got {self.patch_side}")
        if not 0.0 < self.rescale_range[0] <= self.rescale_range[1]:
            raise ValueError(f"augmentation rescale_range must be 0 < low <= high, got {self.rescale_range}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"augmentation jpeg_quality must be 1 <= low <= high <= 100, got {self.jpeg_quality}")
        for name in ("colour_range", "gain_range"):
            if not 0.0 < getattr(self, name)[0] <= getattr(self, name)[1]:
                raise ValueError(f"augmentation {name} must be 0 < low <= high, got {getattr(self, name)}")

    def rng(self, seed: int, view: int, sha256_hex: str) -> np.random.Generator:
        """The generator of one image's draws for one view: a function of seed, view and content."""
        return np.random.default_rng([seed, view, int(sha256_hex[:16], 16)])

    def apply(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """One random augmented version of RGB `img`. All draws are made up front, whether or
        not their change happens, so each change's parameters do not depend on the others'."""
        happens = rng.random(8)
        window, fx, fy = rng.uniform(self.crop_min, 1.0), rng.random(), rng.random()
        factor = float(np.exp(rng.uniform(*np.log(self.rescale_range))))
        qualities = rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1, 2)
        subsamplings = rng.choice(list(SUBSAMPLING), 2)
        radius = rng.uniform(*self.blur_radius)
        grade = np.exp(rng.uniform(*np.log(self.colour_range), 3))  # drawn last: older views stay as they were
        gains = rng.uniform(*self.gain_range, 3)
        patch, side = rng.random(), rng.uniform(self.patch_side[0], self.patch_side[1])  # last, as the grade
        if patch < self.patch_p:
            img = native_patch(img, side, fx, fy)
        else:
            if happens[0] < self.crop_p:
                img = crop(img, window, fx, fy)
            if happens[1] < self.rescale_p:
                img = rescale(img, max(factor, self.min_side / max(1, min(img.size))))
        if happens[7] < self.colour_p:
            img = colour_grade(img, *map(float, grade), tuple(map(float, gains)))
        if happens[2] < self.jpeg_p:
            for i in range(2 if happens[3] < self.jpeg_twice_p else 1):
                img = jpeg_resave(img, int(qualities[i]), str(subsamplings[i]))
        if happens[4] < self.flip_p:
            img = hflip(img)
        if happens[5] < self.grey_p:
            img = greyscale(img)
        if happens[6] < self.blur_p:
            img = blur(img, radius)
        return img

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Augmentation":
        d = dict(d)
        for key in ("patch_side", "rescale_range", "jpeg_quality", "blur_radius", "colour_range", "gain_range"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def native_patch(img: Image.Image, side: float, fx: float, fy: float) -> Image.Image:
    """The square window of `side` pixels (at most the shorter side) placed at (fx, fy) of the
    free room, without resampling: the pixels keep their native resolution."""
    size = max(1, min(round(side), img.width, img.height))
    left, top = round((img.width - size) * fx), round((img.height - size) * fy)
    return img.crop((left, top, left + size, top + size))


def augmented(prep: Preprocessing, augmentation: Augmentation, seed: int, view: int) -> Changed:
    """`prep` with view `view` of `augmentation` in front of it (for the pipeline's loaders)."""
    return Changed(prep, lambda img, sha: augmentation.apply(img, augmentation.rng(seed, view, sha)))
