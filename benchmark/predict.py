"""`python -m benchmark.predict`: is this photo fake? Verdicts on files, folders and globs.

Examples:
  python -m benchmark.predict --model runs/fakelens/fakelens_none/export/fakelens_none_int8.tflite photo.jpg
  python -m benchmark.predict --model m.tflite ~/Pictures --format json > verdicts.json
  python -m benchmark.predict --model m.tflite "shots/**/*.png" --format csv

Per photo: the label, p(fake) and the threshold from the model's metadata (its preprocessing too).
A photo that cannot be read gets its error in its row and the others go on; the exit status is 0
unless every input failed (2). Folders are searched recursively for image files.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags  # noqa: E402
from tqdm import tqdm  # noqa: E402

from train.cli import main_entry, run_main  # noqa: E402
from train.data import IMAGE_SUFFIXES, DataError  # noqa: E402

FORMATS = ("table", "json", "csv")
COLUMNS = ("path", "label", "p_fake", "threshold", "error")


def expand_inputs(items: list[str]) -> list[str]:
    """Files as given; folders → their image files, recursively and sorted; anything else that
    looks like a glob → its matches. A path that exists nowhere stays, to be reported as such."""
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.exists() or not glob.has_magic(item):
            out.append(item)
        else:
            out.extend(m for m in sorted(glob.glob(item, recursive=True)) if not Path(m).is_dir())
    return out


def render(rows: list[dict], fmt: str) -> str:
    """The verdicts as a terminal table, a JSON array or CSV."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    width = max([len("photo")] + [len(r["path"]) for r in rows])
    lines = [f"{'photo':<{width}}  label  p(fake)  threshold", f"{'-' * width}  -----  -------  ---------"]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['path']:<{width}}  error: {r['error']}")
        else:
            lines.append(f"{r['path']:<{width}}  {r['label']:<5}  {r['p_fake']:7.3f}  {r['threshold']:9.3f}")
    fake = sum(r["label"] == "fake" for r in rows)
    failed = sum(bool(r["error"]) for r in rows)
    lines.append(f"\n{len(rows)} photo(s): {fake} fake, {len(rows) - fake - failed} real"
                 + (f", {failed} could not be read" if failed else ""))
    return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags exist only when run as a command, so importing this module defines none."""
    flags.DEFINE_string("model", None, "A FakeLens .tflite file (exported by `python -m convert`).")
    flags.DEFINE_enum("format", "table", list(FORMATS), "table (for people), json (an array of objects with "
                      "path, label, p_fake, threshold, error) or csv, to stdout.")
    flags.DEFINE_integer("threads", None, "Decoding and interpreter threads (default: all cores).", lower_bound=1)
    flags.DEFINE_bool("debug", False, "Show full tracebacks.")


def main(argv):
    if not FLAGS.model:
        raise app.UsageError("--model is required: a FakeLens .tflite file")
    if len(argv) < 2:
        raise app.UsageError("give one or more photos, folders or globs after the flags")
    all_failed = []

    def job():
        from benchmark.detector import Detector  # TensorFlow loads only when there is work
        paths = expand_inputs(argv[1:])
        if not paths:
            raise DataError(f"{', '.join(argv[1:])}: no image files found — give photos, folders with "
                            f"photos in them, or globs that match some")
        detector = Detector(FLAGS.model, FLAGS.threads)
        bar = tqdm(total=len(paths), desc="photos", unit="img", leave=False, disable=len(paths) < 2)
        rows = []
        for prediction in detector.predict_many(paths):
            rows.append(prediction.to_dict())
            bar.update()
        bar.close()
        print(render(rows, FLAGS.format))
        all_failed.append(all(r["error"] for r in rows))

    code = run_main(job, FLAGS.debug)
    if code == 0 and all_failed and all_failed[0]:
        print("error: no photo could be read (see the error column)", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    define_flags()
    main_entry(main)
