"""Writing outputs safely. Atomic files: a temporary file in the same folder, then a rename, so an
interrupted run never leaves a half-written file that looks whole. Output locks: two commands
never write into the same folder at once."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class OutputError(OSError):
    """An output location that cannot be written; the message names it and the fix."""


def make_folder(folder: str | Path) -> Path:
    """Create `folder` and its parents for outputs, or fail naming the path and the reason
    (typically a parent that is a regular file, or a read-only or virtual file system)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (err.strerror or str(err)).lower()
        raise OutputError(f"{folder}: cannot create this output folder ({why}) — "
                          f"choose another output path") from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error remove it.
    Works for files and for folders (e.g. a SavedModel)."""
    path = Path(path)
    folder = make_folder(path.parent)
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=folder))
    except OSError as err:  # the folder exists but refuses new files
        raise OutputError(f"{path.parent}: cannot write output files here ({(err.strerror or str(err)).lower()}) "
                          f"— choose another output path") from None
    tmp = tmp_dir / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8; a file name that is not UTF-8 (Python holds its bytes as surrogates) is written back
    as its own bytes, so the path in the output is the path on disk."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextmanager
def output_lock(folder: str | Path) -> Iterator[Path]:
    """Hold `folder` for one command: a second FakeLens command writing there refuses at once.

    An flock on `.<name>.lock` beside the folder (beside it, so the folder itself can still be
    replaced atomically); the kernel drops it when the process ends, however it ends, so a killed
    run never leaves it stuck. The lock file stays: removing it would let two runs lock two files."""
    folder = Path(folder)
    try:
        lock = make_folder(folder.parent) / f".{folder.name}.lock"
    except OutputError:
        make_folder(folder)  # fails too, and names the output folder the user gave
        raise
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as err:
        raise OutputError(f"{lock}: cannot create the lock file for {folder} ({(err.strerror or str(err)).lower()}) "
                          f"— choose another output path") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise OutputError(f"{folder}: another FakeLens command (pid {holder}) is writing here — wait for it "
                              f"to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)
