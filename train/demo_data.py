"""A small synthetic dataset, generated deterministically, for `make demo` on a fresh clone:
`python -m train.demo_data [FOLDER]`.

It mimics the shared data's layout (MANIFEST.csv, the same source names and splits) so the
whole pipeline runs unchanged, but its "fakes" are smooth random images with a faint periodic
pattern (GAN-style 2-pixel checkerboard, diffusion-style 8-pixel grid) and its "reals" carry
sensor-like noise. Accuracy on it says nothing about real deepfakes.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from train.data import file_sha256, hash_split
from train.io import atomic_write_bytes, atomic_write_text

# source → (label, style, file format, size, count)
SOURCES = {
    "real_ciplab": ("real", "noise", "JPEG", 192, 48),
    "gan_faces": ("fake", "checker", "JPEG", 160, 48),
    "real_lfw": ("real", "noise", "JPEG", 150, 40),
    "sd21_faces": ("fake", "grid", "JPEG", 176, 40),
    "sd15": ("fake", "grid", "PNG", 192, 12),
    "sdxl_faces": ("fake", "grid", "JPEG", 224, 10),
}
TEST_ONLY = {"sd15", "sdxl_faces"}


def synthetic_image(rng: np.random.RandomState, size: int, style: str) -> np.ndarray:
    """A smooth random colour field (blurred low-resolution noise) plus the style's artefact."""
    coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float64)
    yy, xx = np.mgrid[0:size, 0:size]
    if style == "noise":
        field += rng.normal(0, 6, field.shape)
    elif style == "checker":
        field += 5.0 * (((xx + yy) % 2) * 2 - 1)[..., None]
    elif style == "grid":
        field += 8.0 * ((xx % 8 == 0) | (yy % 8 == 0))[..., None]
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def make_demo_dataset(out: str | Path, seed: int = 0) -> Path:
    """Write the images and MANIFEST.csv under `out`; return the manifest path. Idempotent."""
    out = Path(out)
    rows = []
    for s_index, (source, (label, style, fmt, size, count)) in enumerate(SOURCES.items()):
        for i in range(count):
            rng = np.random.RandomState(seed * 1000 + s_index * 100 + i)
            img = Image.fromarray(synthetic_image(rng, size, style))
            suffix = "jpg" if fmt == "JPEG" else "png"
            path = out / source / f"{source}_{i:03d}.{suffix}"
            buf = io.BytesIO()
            img.save(buf, fmt, **({"quality": 94 if label == "real" else 90} if fmt == "JPEG" else {}))
            atomic_write_bytes(path, buf.getvalue())
            sha = file_sha256(path)
            split = "test" if source in TEST_ONLY else hash_split(sha)
            rows.append([f"{source}/{path.name}", label, source, "synthetic-demo", split, sha])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label", "source", "generator", "split", "sha256"])
    writer.writerows(rows)
    manifest = out / "MANIFEST.csv"
    atomic_write_text(manifest, buf.getvalue())
    return manifest


def main(argv):
    """python -m train.demo_data [FOLDER]: write the demo dataset into FOLDER (default demo_data)."""
    from absl import app, flags

    from train.cli import run_main
    if len(argv) > 2:
        raise app.UsageError(f"one output folder at most, got {' '.join(argv[1:])}")
    return run_main(lambda: print(make_demo_dataset(argv[1] if len(argv) > 1 else "demo_data",
                                                    flags.FLAGS.seed)), flags.FLAGS.debug)


if __name__ == "__main__":
    from absl import flags

    from train.cli import main_entry
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic images (the demo's numbers are for seed 0).", lower_bound=0)
    flags.DEFINE_bool("debug", False, "Show full tracebacks.")
    main_entry(main)
