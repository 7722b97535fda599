"""Reading an input file safely: only regular files, and never more bytes than a stated limit.

A named pipe called `x.jpg` would block a plain `read_bytes()` forever, and `/dev/zero` would fill
memory; both are refused here, before any byte is read, with a message that names the path."""
from __future__ import annotations

import os
import stat
from pathlib import Path

MiB = 1 << 20
# Limits far above any real input of its kind, low enough that one file cannot exhaust memory.
MAX_IMAGE_BYTES = 256 * MiB  # a 100-megapixel PNG is about 300 MB raw, well under 100 MB encoded
MAX_MODEL_BYTES = 1024 * MiB  # MobileNet V1 float32 is 13 MB
MAX_TEXT_BYTES = 256 * MiB  # manifests and JSON side files

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


class FileProblem(ValueError):
    """An input path that is not a readable regular file within the size limit; the message
    names the path and the fix."""


def _mib(n: int) -> str:
    return f"{n / MiB:,.0f} MiB"


def _refuse_special(path: Path, what: str, mode: int | None = None) -> None:
    """Raise FileProblem if `path` (or the open file's `mode`) is anything but a regular file."""
    if mode is None:
        try:
            mode = os.stat(path).st_mode
        except (OSError, ValueError):
            return
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise FileProblem(f"{path}: is {kind}, not a {what} — pass a regular file")


def read_regular(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file `path`, if it holds at most `limit` bytes.

    Opened non-blocking, so a FIFO cannot stall the open; the type and size come from the open
    descriptor, so the checked file is the file read."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem(f"{path}: no such {what} — check the path") from None
    except PermissionError:
        raise FileProblem(f"{path}: permission denied — make the {what} readable") from None
    except (OSError, ValueError) as err:  # a socket, a symlink loop, a path through a file, a NUL byte
        _refuse_special(path, what)
        reason = getattr(err, "strerror", None) or str(err)
        raise FileProblem(f"{path!s}: cannot be read ({reason.lower()}) — check the path") from None
    try:
        _refuse_special(path, what, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while chunk := os.read(fd, min(8 * MiB, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileProblem(f"{path}: larger than the {_mib(limit)} limit for a {what} — "
                                  f"use a smaller file")
        return b"".join(chunks)
    except OSError as err:
        raise FileProblem(f"{path}: cannot be read ({(err.strerror or str(err)).lower()}) — "
                          f"check the file") from None
    finally:
        os.close(fd)
