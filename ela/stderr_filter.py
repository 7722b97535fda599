"""Known noise out of stderr, at the file-descriptor level (where C++ loggers write), for a short
call: what the call prints is caught in a temporary file and written back without the lines that
hold one of the given messages. Imports nothing heavy: a process that loads only the TFLite
interpreter can use it. `ela.tf_env` says which messages are noise and why.
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator


def filtering() -> bool:
    """Whether known noise is dropped: always, unless TF_CPP_MIN_LOG_LEVEL=0 asks for everything."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() not in ("", "0")


def without_noise(text: str, noise: tuple[str, ...]) -> str:
    """`text` without the lines that contain one of the `noise` messages."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(n in line for n in noise))


@contextmanager
def filtered_stderr(noise: tuple[str, ...]) -> Iterator[None]:
    """Catch stderr at the file-descriptor level (C++ loggers write there directly) for the
    duration, then write it back without the lines holding one of the `noise` messages. For
    short calls only: whatever the call prints (a progress bar, say) appears when it returns."""
    try:
        saved = os.dup(2) if noise and filtering() else None
    except OSError:  # no stderr at all: nothing to filter
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            sys.stderr.write(without_noise(caught.read().decode("utf-8", "replace"), noise))
            sys.stderr.flush()
