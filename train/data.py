"""Datasets: records from a manifest CSV or a folder tree, content-hash splits, preprocessing.

A record is one image file with its label, source and split. Splits come from the file's
sha256, so identical files always land in the same split and cannot leak from train to test,
and re-running on the same files gives the same split.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from ela import ImageError, Preprocessing
from ela.files import MAX_IMAGE_BYTES, MAX_TEXT_BYTES, FileProblem, read_regular
from train.io import atomic_write_text

LABELS = ("real", "fake")  # class index 0 = real, 1 = fake
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
REQUIRED_COLUMNS = ("path", "label", "source")
SHA256 = re.compile("[0-9a-f]{64}")
LICENCE_COLUMN = "license"  # optional manifest column: the licence of each file as its source states it


class DataError(ValueError):
    """A dataset that cannot be used as given; the message says what to fix."""


@dataclass(frozen=True)
class Record:
    path: Path
    label: str
    source: str
    split: str
    sha256: str

    @property
    def y(self) -> int:
        return LABELS.index(self.label)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(path: Path) -> str:
    """sha256 of a regular file; zeros for anything that cannot be an image (missing, a FIFO, a
    device, over the size limit), which is then skipped and listed with its reason when read."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return "0" * 64
    return file_sha256(path) if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_IMAGE_BYTES else "0" * 64


def hash_split(sha256_hex: str, val: float = 0.15, test: float = 0.15) -> str:
    """Deterministic split from a content hash: the first 8 hex digits as a fraction in [0, 1)."""
    u = int(sha256_hex[:8], 16) / 16**8
    return "test" if u < test else "val" if u < test + val else "train"


def _inside(root: Path, rel: str, where: str) -> Path:
    """`rel` resolved under `root`; a manifest may not reach files outside its dataset."""
    try:
        path = (root / rel).resolve()
    except (OSError, ValueError) as err:  # a NUL byte in the name, a symlink loop
        raise DataError(f"{where}: path {rel!r} cannot be used ({err}) — fix this row") from None
    if os.path.isabs(rel) or not path.is_relative_to(root.resolve()):
        raise DataError(f"{where}: path {rel!r} points outside the dataset root {root} — use paths relative to it")
    return path


def load_manifest(manifest: str | Path, root: str | Path | None = None) -> list[Record]:
    """Records from a CSV with columns path,label,source[,split][,sha256]; paths are relative
    to `root` (default: the manifest's folder). Rows without a split get a hash split."""
    manifest = Path(manifest)
    try:
        data = read_regular(manifest, MAX_TEXT_BYTES, "manifest")
    except FileProblem as err:
        raise DataError(f"{err}; a manifest is a CSV with columns {','.join(REQUIRED_COLUMNS)}[,split]") from None
    root = Path(root) if root else manifest.parent
    try:
        # utf-8-sig: spreadsheet programs often start a CSV with a byte-order mark
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header, rows = reader.fieldnames or [], list(reader)
    except UnicodeDecodeError:
        raise DataError(f"{manifest}: not a UTF-8 text CSV — pass a manifest with columns "
                        f"{','.join(REQUIRED_COLUMNS)}[,split]") from None
    except csv.Error as err:  # e.g. a field longer than the csv module's limit, a NUL byte
        raise DataError(f"{manifest}: unreadable CSV ({err}) — fix the file; it needs columns "
                        f"{','.join(REQUIRED_COLUMNS)}[,split]") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{manifest}: missing column(s) {', '.join(missing)} — "
                        f"the header needs {','.join(REQUIRED_COLUMNS)}[,split]")
    records, seen = [], set()
    for lineno, row in enumerate(rows, start=2):
        if any(row[c] is None for c in REQUIRED_COLUMNS):
            raise DataError(f"{manifest}:{lineno}: row has fewer fields than the header — give {','.join(header)}")
        label = row["label"].strip().lower()
        if label not in LABELS:
            raise DataError(f"{manifest}:{lineno}: unknown label {row['label']!r} — use one of {LABELS}")
        rel = row["path"]  # byte-exact: "a.jpg " and "a.jpg" are different files
        path = _inside(root, rel, f"{manifest}:{lineno}")
        if path in seen:
            raise DataError(f"{manifest}:{lineno}: duplicate row for {rel!r} — keep one")
        seen.add(path)
        sha = (row.get("sha256") or "").strip().lower()
        if sha and not SHA256.fullmatch(sha):
            raise DataError(f"{manifest}:{lineno}: sha256 {sha[:80]!r} is not 64 hex digits — fix it or leave it empty")
        sha = sha or content_sha256(path)
        split = (row.get("split") or "").strip() or hash_split(sha)
        if split not in SPLITS:
            raise DataError(f"{manifest}:{lineno}: unknown split {split!r} — use one of {SPLITS}")
        records.append(Record(path, label, row["source"].strip(), split, sha))
    if not records:
        raise DataError(f"{manifest}: no rows — add one row per image")
    return records


def scan_folders(root: str | Path, source_labels: dict[str, str]) -> list[Record]:
    """Records from ROOT/<source>/** image files, labelled by `source_labels` (source → label);
    splits from content hashes."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    records = []
    for source, label in sorted(source_labels.items()):
        if label not in LABELS:
            raise DataError(f"source {source!r}: unknown label {label!r} — use one of {LABELS}")
        folder = root / source
        if not folder.is_dir():
            raise DataError(f"{folder}: source folder not found — expected ROOT/<source>/ with images")
        for path in _images_under(folder):
            sha = content_sha256(path)
            records.append(Record(path, label, source, hash_split(sha), sha))
    if not records:
        raise DataError(f"{root}: no image files under {', '.join(sorted(source_labels))}")
    return records


def _images_under(folder: Path) -> list[Path]:
    """Every non-folder entry with an image suffix: a FIFO or device named x.jpg is kept, so that
    reading it skips and lists it, rather than it vanishing without a word."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def scan_label_folders(root: str | Path) -> list[Record]:
    """Records from a plain folder of one's own photos: ROOT/real/** and ROOT/fake/** at any
    depth. The first folder below real/ or fake/, if any, names the source (fake/midjourney/x.jpg
    → source "midjourney"); files directly in them have the label as source. Splits come from
    content hashes, as for manifests without a split column."""
    root = Path(root)
    top = root.resolve()
    stray = [p for p in _images_under(root) if p.relative_to(root).parts[0] not in LABELS]
    if stray:
        raise DataError(f"{stray[0]}: an image outside real/ and fake/ ({len(stray)} such file(s)) — move it into "
                        f"{root / 'real'} or {root / 'fake'}, or remove it")
    records = []
    for label in LABELS:
        folder = root / label
        files = _images_under(folder) if folder.is_dir() else []
        if not files:
            raise DataError(f"{folder}: no image files — a folder dataset needs photos in both {root / 'real'} "
                            f"and {root / 'fake'}")
        for path in files:
            try:
                target = path.resolve()
            except (OSError, RuntimeError):  # a symlink loop: skipped and listed when read
                target = top
            if not target.is_relative_to(top):
                raise DataError(f"{path}: links to {target}, outside the dataset {root} — copy the file "
                                f"into the folder instead")
            parts = path.relative_to(folder).parts
            sha = content_sha256(path)
            records.append(Record(path, label, parts[0] if len(parts) > 1 else label, hash_split(sha), sha))
    return records


def manifest_file(data: str | Path, source_labels: dict[str, str] | None = None) -> Path | None:
    """The manifest CSV that `load_records(data, source_labels)` reads, or None for a folder dataset."""
    data = Path(data)
    if data.exists() and not data.is_dir():  # a manifest, or a FIFO or device refused by name when read
        return data
    return data / "MANIFEST.csv" if (data / "MANIFEST.csv").is_file() and not source_labels else None


def manifest_sha256(data: str | Path) -> str | None:
    """The sha256 of the dataset's manifest file (None for a folder dataset): which version of
    the data a run was trained on."""
    manifest = manifest_file(data)
    if manifest is None:
        return None
    try:
        return hashlib.sha256(read_regular(manifest, MAX_TEXT_BYTES, "manifest")).hexdigest()
    except FileProblem as err:
        raise DataError(str(err)) from None


def source_licences(manifest: str | Path) -> dict[str, list[str]]:
    """Per source, the licences the manifest's `license` column states (distinct values, in order
    of appearance); empty when the manifest has no such column."""
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if LICENCE_COLUMN not in (reader.fieldnames or []):
            return {}
        found: dict[str, dict[str, None]] = {}
        for row in reader:
            text = (row[LICENCE_COLUMN] or "").strip()
            if text and row.get("source"):
                found.setdefault(row["source"].strip(), {})[text] = None
    return {source: list(texts) for source, texts in sorted(found.items())}


def load_records(data: str | Path, source_labels: dict[str, str] | None = None) -> list[Record]:
    """A dataset given as a manifest CSV, a folder holding MANIFEST.csv, a plain folder with
    real/ and fake/ subfolders, or (with `source_labels`) a folder tree of sources."""
    data = Path(data)
    manifest = manifest_file(data, source_labels)
    if manifest is not None:
        return load_manifest(manifest)
    if source_labels:
        return scan_folders(data, source_labels)
    if any((data / label).is_dir() for label in LABELS):
        return scan_label_folders(data)
    if not data.exists():
        raise DataError(f"{data}: no such dataset — give a folder with real/ and fake/ subfolders, a folder "
                        f"with MANIFEST.csv, or a manifest CSV")
    raise DataError(f"{data}: no MANIFEST.csv and no real/ or fake/ folder here — put your photos in "
                    f"{data / 'real'} and {data / 'fake'}, add a MANIFEST.csv with columns "
                    f"{','.join(REQUIRED_COLUMNS)}[,split], or pass a manifest CSV")


def select(records: Iterable[Record], sources: Sequence[str] | None = None, splits: Sequence[str] | None = None,
           max_per_source: int | None = None) -> list[Record]:
    """Records of the given sources and splits, sorted by hash within each source (a stable,
    content-defined order); at most `max_per_source` of each source and split."""
    chosen: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        if (sources is None or r.source in sources) and (splits is None or r.split in splits):
            chosen.setdefault((r.source, r.split), []).append(r)
    out = []
    for key in sorted(chosen):
        group = sorted(chosen[key], key=lambda r: (r.sha256, str(r.path)))
        out.extend(group[:max_per_source] if max_per_source else group)
    return out


def balance(records: Sequence[Record]) -> list[Record]:
    """A 50:50 real/fake subset: the first min(n_real, n_fake) of each class in hash order."""
    real = sorted((r for r in records if r.label == "real"), key=lambda r: r.sha256)
    fake = sorted((r for r in records if r.label == "fake"), key=lambda r: r.sha256)
    n = min(len(real), len(fake))
    return real[:n] + fake[:n]


@dataclass
class Skipped:
    path: Path
    reason: str


def preprocess_records(records: Sequence[Record], prep: Preprocessing, desc: str = "preprocess",
                       workers: int | None = None) -> tuple[np.ndarray, np.ndarray, list[Record], list[Skipped]]:
    """Decode and preprocess every record once (threads: Pillow releases the GIL while coding).
    Returns x uint8 (N, S, S, 3), y int (N,), the records kept, and the skipped files with reasons."""

    def one(r: Record):
        try:
            return prep.load(r.path)
        except ImageError as err:
            return err

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(one, records), total=len(records), desc=desc, unit="img", leave=False))
    kept, arrays, skipped = [], [], []
    for r, out in zip(records, results):
        if isinstance(out, ImageError):
            skipped.append(Skipped(r.path, str(out)))
        else:
            kept.append(r)
            arrays.append(out)
    size = prep.input_size
    x = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)
    y = np.array([r.y for r in kept], dtype=np.int64)
    return x, y, kept, skipped


def write_skipped(skipped: Sequence[Skipped], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "reason"])
    writer.writerows([str(s.path), s.reason] for s in skipped)
    atomic_write_text(path, buf.getvalue())
