"""The whole image → model-input path, as one typed, serialisable object.

Training, int8 calibration and benchmarking all call `Preprocessing.apply`; `convert` writes
`to_dict()` into each .tflite's metadata and `benchmark` rebuilds the object from there, so a
model is always evaluated with the preprocessing it was trained with.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ela import fields
from ela.images import read_image
from ela.transform import ElaParams, error_level, jpeg_roundtrip

SCHEMA_VERSION = 1
RESAMPLE = Image.BILINEAR
MAX_INPUT_SIZE = 4096  # for sizes read from files: far above any phone model's input


@dataclass(frozen=True)
class FormatControl:
    """Format-controlled protocol: every image, whatever its class, is resized to the model
    input and re-encoded as JPEG at a quality drawn from [quality_min, quality_max] by its
    content hash, so file format, size and compression history no longer tell the classes apart.
    """

    quality_min: int = 70
    quality_max: int = 95

    def __post_init__(self):
        if not (1 <= self.quality_min <= self.quality_max <= 100):
            raise ValueError(f"format-control qualities must satisfy 1 <= min <= max <= 100, "
                             f"got {self.quality_min}..{self.quality_max}")

    def quality_for(self, sha256_hex: str) -> int:
        if not sha256_hex:
            raise ValueError("the format-controlled protocol needs the file's content hash")
        span = self.quality_max - self.quality_min + 1
        return self.quality_min + int(sha256_hex[:8], 16) % span

    def encode(self, img: Image.Image, sha256_hex: str, size: int) -> bytes:
        """The controlled file: `img` resized to size×size, as JPEG at its hash-drawn quality
        (the bytes whose decoding `Preprocessing.apply` gets from `jpeg_roundtrip`)."""
        buf = io.BytesIO()
        img.resize((size, size), RESAMPLE).save(buf, format="JPEG", quality=self.quality_for(sha256_hex))
        return buf.getvalue()


@dataclass(frozen=True)
class Preprocessing:
    """input_size: side of the square RGB model input (pixels 0..255, the model rescales).
    ela: ELA parameters, or None for plain RGB.
    format_control: the format-controlled protocol, or None to use files as they are.
    """

    input_size: int = 224
    ela: Optional[ElaParams] = None
    format_control: Optional[FormatControl] = field(default=None)

    def __post_init__(self):
        if not (isinstance(self.input_size, int) and self.input_size >= 32):
            raise ValueError(f"input_size must be an integer >= 32, got {self.input_size!r}")

    def apply(self, img: Image.Image, sha256_hex: str = "") -> np.ndarray:
        """RGB image → uint8 array (input_size, input_size, 3) ready for the model."""
        size = (self.input_size, self.input_size)
        if self.format_control is not None:
            img = jpeg_roundtrip(img.resize(size, RESAMPLE), self.format_control.quality_for(sha256_hex))
        if self.ela is None:
            return np.asarray(img.resize(size, RESAMPLE), dtype=np.uint8)
        if self.ela.resolution == "resized":
            return error_level(img.resize(size, RESAMPLE), self.ela)
        ela_map = Image.fromarray(error_level(img, self.ela), "RGB")
        return np.asarray(ela_map.resize(size, RESAMPLE), dtype=np.uint8)

    def load(self, path: str | Path) -> np.ndarray:
        """Read, decode and preprocess one file (raises ela.ImageError on a bad file)."""
        img, sha = read_image(path)
        return self.apply(img, sha)

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "input_size": self.input_size,
            "resize": "bilinear",
            "ela": self.ela.to_dict() if self.ela else None,
            "format_control": (
                {"quality_min": self.format_control.quality_min, "quality_max": self.format_control.quality_max}
                if self.format_control else None),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "preprocessing") -> "Preprocessing":
        """The inverse of `to_dict`, for a dict read from a file: every field type- and range-
        checked (raises ValueError naming the field)."""
        d = fields.mapping(d, where)
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"preprocessing schema version {version!r:.40} is not supported "
                             f"(this FakeLens reads version {SCHEMA_VERSION}) — re-export the model")
        if d.get("resize", "bilinear") != "bilinear":
            raise fields.FieldError(f"{where}.resize must be 'bilinear', got {d['resize']!r:.40}")
        fc = d.get("format_control")
        if fc is not None:
            fc = fields.mapping(fc, f"{where}.format_control")
            fc = FormatControl(fields.integer(fc, "quality_min", f"{where}.format_control", 1, 100),
                               fields.integer(fc, "quality_max", f"{where}.format_control", 1, 100))
        ela = d.get("ela")
        return cls(input_size=fields.integer(d, "input_size", where, 32, MAX_INPUT_SIZE),
                   ela=ElaParams.from_dict(ela, f"{where}.ela") if ela is not None else None,
                   format_control=fc)
