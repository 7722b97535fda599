"""What every `python -m <stage>` does with errors: a user mistake prints one line naming the
file and the fix and exits 2; tracebacks only with --debug."""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, logging

from ela import ImageError
from train.data import DataError

USER_ERRORS: tuple[type[BaseException], ...] = (ImageError, DataError, FileNotFoundError, PermissionError,
                                                IsADirectoryError, ValueError, RuntimeError)


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
    try:
        job()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
