"""What every `python -m <stage>` does with errors: a user mistake prints one line naming the
file and the fix and exits 2; tracebacks only with --debug."""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, logging

from ela import ImageError
from train.data import DataError

# OSError covers files and folders that cannot be read or written (missing, a file where a folder
# is needed, no permission, a read-only disk): the user can fix all of those.
USER_ERRORS: tuple[type[BaseException], ...] = (ImageError, DataError, OSError, ValueError, RuntimeError)


def error_message(err: BaseException) -> str:
    """One line naming the file and the fix. Our own errors already read that way; an OSError
    raised by the system is reworded from its file name and reason; line breaks are folded."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror.lower()} — check this path (outputs need a folder you can write to)"
    return " ".join(str(err).split())


def main_entry(main: Callable) -> None:
    """absl's app.run, except that --help exits 0 like every other command-line tool."""
    try:
        app.run(main)
    except SystemExit as done:
        if done.code == 1 and any(a in ("--help", "-h", "-?", "--helpfull") for a in sys.argv[1:]):
            sys.exit(0)
        raise


def run_main(job: Callable[[], object], debug: bool) -> int:
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO chatter would bury the results
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints escaped, never crashes
        stream.reconfigure(errors="backslashreplace")
    try:
        job()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {error_message(err)}", file=sys.stderr)
        return 2
    return 0
