"""The one skeleton of every `python -m <command>`: its exit codes, `--debug`, stray arguments, and
one-line messages. A usage mistake (unknown flag, missing required flag, bad value, stray argument)
and a user error (a file or folder that cannot be used) each print one `error:` line that says
what to do; tracebacks only with --debug. Commands raise `app.UsageError` for usage mistakes they
find themselves, before any work, and return `EXIT_GATE` when a gate failed."""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags, logging

from ela import ImageError
from train.data import DataError

EXIT_DONE = 0
EXIT_USAGE = 1  # unknown flag, missing required flag, bad value, stray argument: nothing was done
EXIT_INPUT = 2  # unusable input: a file, folder or dataset the command cannot use
EXIT_GATE = 3  # the work is done and written, but a gate (e.g. `benchmark --fail_below`) failed
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a process ended by SIGINT (128 + 2)

HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")

# OSError covers files and folders that cannot be read or written (missing, a file where a folder
# is needed, no permission, a read-only disk): the user can fix all of those.
USER_ERRORS: tuple[type[BaseException], ...] = (ImageError, DataError, OSError, ValueError, RuntimeError)

flags.disclaim_key_flags()  # --debug, defined below for each command, belongs to that command's --help


def error_message(err: BaseException) -> str:
    """One line naming the file and the fix. Our own errors already read that way; an OSError
    raised by the system is reworded from its file name and reason; line breaks are folded."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror.lower()} — check this path (outputs need a folder you can write to)"
    return " ".join(str(err).split())


def usage_error(message: str) -> int:
    """Print a usage mistake as one line and return EXIT_USAGE."""
    print(f"error: {' '.join(message.split())} (see --help)", file=sys.stderr)
    return EXIT_USAGE


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag reported as one line (absl's own report is two)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        sys.exit(usage_error(str(err)))


def main_entry(main: Callable[[list[str]], int | None], positional: str = "") -> None:
    """Run `main(argv)` as a command: define --debug, parse the flags, refuse stray arguments
    (unless the command takes `positional` ones, named here for the message), turn a UsageError
    into one line and EXIT_USAGE, and let --help exit 0 like every other command-line tool."""
    flags.DEFINE_bool("debug", False, "Show full tracebacks.")

    def checked_main(argv: list[str]) -> int | None:
        if not positional and len(argv) > 1:
            return usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
        try:
            return main(argv)
        except app.UsageError as err:
            return usage_error(str(err))

    try:
        app.run(checked_main, flags_parser=_parse_flags)
    except SystemExit as done:
        if done.code == EXIT_USAGE and any(a in HELP_FLAGS for a in sys.argv[1:]):
            sys.exit(EXIT_DONE)  # absl's help flags print the help, then exit 1
        raise


def run_main(job: Callable[[], object]) -> int:
    """Do the command's work: EXIT_DONE, or a user error as one line and EXIT_INPUT (the
    traceback with --debug), or EXIT_INTERRUPTED on Ctrl-C."""
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO chatter would bury the results
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints escaped, never crashes
        stream.reconfigure(errors="backslashreplace")
    try:
        job()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as err:
        if flags.FLAGS.debug:
            raise
        print(f"error: {error_message(err)}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_DONE
