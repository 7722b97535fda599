"""Error Level Analysis: re-save as JPEG, take |original − resaved|, scale.

The single definition used for training, export calibration, benchmarking and (through the
parameters written into each .tflite) the phone. Regions whose compression history differs
from the rest re-compress differently, so they stand out in the error map.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Literal, Union

import numpy as np
from PIL import Image

from ela import fields

Scale = Union[float, Literal["auto"]]
RESOLUTIONS = ("full", "resized")


@dataclass(frozen=True)
class ElaParams:
    """ELA settings.

    quality: JPEG quality of the re-save (1..100).
    scale: "auto" stretches each image so its largest difference becomes 255 (the common ELA
        recipe); a number multiplies every difference by that fixed factor.
    resolution: "full" computes ELA on the decoded image and then resizes the map to the model
        input; "resized" resizes first and computes ELA at the model's input size (what an
        in-graph or on-phone ELA sees).
    """

    quality: int = 90
    scale: Scale = "auto"
    resolution: str = "full"

    def __post_init__(self):
        if not (isinstance(self.quality, int) and 1 <= self.quality <= 100):
            raise ValueError(f"ELA quality must be an integer in 1..100, got {self.quality!r}")
        if self.scale != "auto" and not (isinstance(self.scale, (int, float)) and self.scale > 0):
            raise ValueError(f"ELA scale must be 'auto' or a positive number, got {self.scale!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"ELA resolution must be one of {RESOLUTIONS}, got {self.resolution!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "ela") -> "ElaParams":
        """The inverse of `to_dict`, every field checked (raises ValueError naming the field)."""
        d = fields.mapping(d, where)
        scale = d.get("scale", "auto")
        if scale != "auto":
            scale = fields.number(d, "scale", where, 0.0, 1e6, open_interval=True)
        resolution = fields.text(d, "resolution", where, "full")
        if resolution not in RESOLUTIONS:
            raise fields.FieldError(f"{where}.resolution must be one of {RESOLUTIONS}, got {resolution!r:.40}")
        return cls(quality=fields.integer(d, "quality", where, 1, 100), scale=scale, resolution=resolution)


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    """Encode RGB `img` as baseline JPEG with Pillow's defaults (4:2:0, standard tables scaled
    to `quality`) and decode it again."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def error_level(img: Image.Image, params: ElaParams) -> np.ndarray:
    """ELA map of RGB `img`: uint8 array (H, W, 3).

    With scale "auto" the map is round(diff * 255 / max_diff) computed in integers (so any
    other implementation, e.g. the Kotlin one, can match it bit for bit); an image whose
    re-save is identical gives all zeros. A fixed scale gives min(255, round(diff * scale)).
    """
    if img.mode != "RGB":
        raise ValueError(f"error_level expects an RGB image, got mode {img.mode}")
    original = np.asarray(img, dtype=np.int32)
    resaved = np.asarray(jpeg_roundtrip(img, params.quality), dtype=np.int32)
    diff = np.abs(original - resaved)
    if params.scale == "auto":
        peak = int(diff.max(initial=0))
        if peak == 0:
            return np.zeros(diff.shape, np.uint8)
        scaled = (diff * 255 + peak // 2) // peak
    else:
        scaled = np.floor(diff * float(params.scale) + 0.5)
    return np.minimum(scaled, 255).astype(np.uint8)
