"""Decoding any Pillow-readable file into the one RGB form every stage works on.

Real photo folders contain CMYK JPEGs, 16-bit PNGs, palette GIFs, images with alpha and
EXIF-rotated phone photos. They are all brought to 8-bit RGB here, the same way for training,
export calibration and benchmarking, so that no stage decodes differently from another.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ela.files import MAX_IMAGE_BYTES, FileProblem, read_regular


class ImageError(ValueError):
    """An input file that cannot be used as an image; the message names the file and the fix."""


def to_rgb(img: Image.Image) -> Image.Image:
    """Return `img` as 8-bit RGB: EXIF orientation applied, alpha composited on white,
    16-bit and 32-bit integer greyscale scaled to 0..255 (not clipped)."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0  # 16-bit range onto 8-bit
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_rgb(data: bytes, name: str = "<bytes>") -> Image.Image:
    """Decode encoded image bytes fully (so truncation is caught here, not later) to RGB."""
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes) — re-download or remove it")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read — convert it to JPEG or PNG, or remove it") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"{name}: too many pixels ({err}) — downscale it first") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: corrupt or truncated image data ({err}) — re-download or remove it") from None


def read_image_bytes(path: str | Path) -> bytes:
    """The bytes of an image file: a regular file within the size limit, or an ImageError."""
    try:
        return read_regular(path, MAX_IMAGE_BYTES)
    except FileProblem as err:
        raise ImageError(str(err)) from None


def read_image(path: str | Path) -> tuple[Image.Image, str]:
    """Read a regular file once; return its RGB image and the sha256 of its bytes (the content
    hash that splits and the format-controlled protocol are keyed on)."""
    data = read_image_bytes(path)
    return decode_rgb(data, str(path)), hashlib.sha256(data).hexdigest()
