"""`python -m benchmark.predict`: is this photo fake? Verdicts on files, folders and globs.

Examples:
  python -m benchmark.predict --model runs/fakelens/fakelens_none/export/fakelens_none_int8.tflite photo.jpg
  python -m benchmark.predict --model m.tflite ~/Pictures --format json > verdicts.json
  python -m benchmark.predict --model m.tflite "shots/**/*.png" --format csv
  python -m benchmark.predict --model m.tflite group.jpg --faces --html sheet.html

Per photo: the label, p(fake) and the threshold from the model's metadata (its preprocessing too).
With --faces each face found is judged on its own (cropped like a training face; see
benchmark/faces.py) and the photo is as fake as its most fake face; a photo without a face is
judged whole and says so. A model exported with --threshold_target also marks uncertain
verdicts: p(fake) close to its threshold, where its validation verdicts were least reliable
(about 1 in 20 validation photos; on them 1 in 4 was wrong). --probes judges each photo again
under the invariance probes (re-saves, rescales, a 90% crop, the mirror image, greyscale: changes
that must not change a verdict) and names those that change it: such a verdict is unsteady, one
to doubt. --html also writes a contact sheet: previews, face boxes, verdicts, sortable by
p(fake). A photo that cannot be read gets its error in its row and the others go on; the exit
status is 0 unless every input failed (2). Folders are searched recursively for image files.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import sys
from pathlib import Path

from absl import app, flags
from tqdm import tqdm

from train.cli import EXIT_DONE, EXIT_INPUT, main_entry, run_main
from train.data import IMAGE_SUFFIXES, DataError  # noqa: E402
from train.io import make_folder  # noqa: E402

FORMATS = ("table", "json", "csv")
COLUMNS = ("path", "label", "p_fake", "threshold", "error")
FACE_COLUMNS = ("scored", "faces")  # added with --faces; a CSV "faces" cell holds the faces as JSON
PROBE_COLUMN = "unsteady"  # added with --probes; a CSV cell holds the probe names joined by ";"
UNCERTAIN_COLUMN = "uncertain"  # added when the model carries a band of uncertain verdicts (true/false)


def expand_inputs(items: list[str]) -> list[str]:
    """Files as given; folders → their image files, recursively and sorted; anything else that
    looks like a glob → its matches. A path that exists nowhere stays, to be reported as such."""
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            # every non-folder entry, FIFOs included: they get a row with their error, not silence
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
        elif path.exists() or not glob.has_magic(item):
            out.append(item)
        else:
            out.extend(m for m in sorted(glob.glob(item, recursive=True)) if not Path(m).is_dir())
    return out


def _face_lines(row: dict) -> list[str]:
    """The table lines under a photo's row that say what was judged."""
    if row["error"] or row.get("faces") is None:
        return []
    if not row["faces"]:
        return ["    no face found: whole image scored"]
    return [f"    face at {x},{y} {w}x{h} (detector {face['confidence']:.2f})  {face['label']:<5}  {face['p_fake']:7.3f}"
            for face in row["faces"] for x, y, w, h in [face["box"]]]


def _unsteady_line(row: dict) -> list[str]:
    """The table line under a photo's row that says how its verdict held under the probes."""
    if row["error"] or row.get(PROBE_COLUMN) is None:
        return []
    if not row[PROBE_COLUMN]:
        return ["    steady: same verdict under every probe"]
    return [f"    unsteady: the verdict changes under {', '.join(row[PROBE_COLUMN])}"]


def _uncertain_line(row: dict) -> list[str]:
    """The table line under a photo's row when its verdict is uncertain."""
    if not row.get(UNCERTAIN_COLUMN):
        return []
    return ["    uncertain: p(fake) is close to the threshold, where this model's verdicts are least reliable"]


def render(rows: list[dict], fmt: str, probes: bool = False) -> str:
    """The verdicts as a terminal table, a JSON array or CSV (rows from `Prediction.to_dict`;
    with `probes` every row has an "unsteady" field, None where the photo could not be read, and
    with a model that carries a band of uncertain verdicts an "uncertain" field, the same way)."""
    faces = any("faces" in r for r in rows)
    banded = any(UNCERTAIN_COLUMN in r for r in rows)
    if probes:
        rows = [{**r, PROBE_COLUMN: r.get(PROBE_COLUMN)} for r in rows]
    if banded:
        rows = [{**r, UNCERTAIN_COLUMN: r.get(UNCERTAIN_COLUMN)} for r in rows]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, COLUMNS + (FACE_COLUMNS if faces else ()) + ((PROBE_COLUMN,) if probes else ())
                                + ((UNCERTAIN_COLUMN,) if banded else ()), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            cells = dict(r, faces=json.dumps(r["faces"], separators=(",", ":"))) if faces else dict(r)
            if probes:
                cells[PROBE_COLUMN] = "" if r[PROBE_COLUMN] is None else ";".join(r[PROBE_COLUMN])
            if banded:
                cells[UNCERTAIN_COLUMN] = "" if r[UNCERTAIN_COLUMN] is None else str(r[UNCERTAIN_COLUMN]).lower()
            writer.writerow(cells)
        return buf.getvalue().rstrip("\n")
    width = max([len("photo")] + [len(r["path"]) for r in rows])
    lines = [f"{'photo':<{width}}  label  p(fake)  threshold", f"{'-' * width}  -----  -------  ---------"]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['path']:<{width}}  error: {r['error']}")
        else:
            lines.append(f"{r['path']:<{width}}  {r['label']:<5}  {r['p_fake']:7.3f}  {r['threshold']:9.3f}")
        lines += _face_lines(r) + _uncertain_line(r) + _unsteady_line(r)
    fake = sum(r["label"] == "fake" for r in rows)
    failed = sum(bool(r["error"]) for r in rows)
    lines.append(f"\n{len(rows)} photo(s): {fake} fake, {len(rows) - fake - failed} real"
                 + (f", {failed} could not be read" if failed else "")
                 + (f"; {sum(len(r['faces']) for r in rows)} face(s) judged" if faces else "")
                 + (f"; {sum(bool(r[UNCERTAIN_COLUMN]) for r in rows)} verdict(s) uncertain" if banded else "")
                 + (f"; {sum(bool(r[PROBE_COLUMN]) for r in rows)} verdict(s) unsteady under the probes"
                    if probes else ""))
    return "\n".join(lines)


def check_output_file(path: str) -> None:
    """Fail before any work if the contact sheet could not be written there."""
    if Path(path).is_dir():
        raise DataError(f"{path}: is a folder — give --html a file name, e.g. {Path(path) / 'verdicts.html'}")
    make_folder(Path(path).parent)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags exist only when run as a command, so importing this module defines none."""
    flags.DEFINE_string("model", None, "A FakeLens .tflite file (exported by `python -m convert`).")
    flags.DEFINE_enum("format", "table", list(FORMATS), "table (for people), json (an array of objects with "
                      "path, label, p_fake, threshold, error; with --faces also scored and faces; uncertain when the "
                      "model carries a band of uncertain verdicts) or csv, to stdout.")
    flags.DEFINE_bool("faces", False, "Find the faces first (MTCNN) and judge each one, cropped like a training "
                      "face; faces: box [x, y, w, h] in the photo's pixels, detector confidence, p_fake, label. "
                      "A photo without a face is judged whole (scored: \"whole image\").")
    flags.DEFINE_bool("probes", False, "Also judge each photo under the invariance probes (PNG and JPEG re-saves, "
                      "rescales, a 90% crop, the mirror image, greyscale; 9 model runs per photo instead of 1) and "
                      "name those that change the verdict (unsteady: a list of probe names, empty when it held).")
    flags.DEFINE_string("html", None, "Also write a contact sheet to this HTML file: previews with the faces "
                        "drawn, verdicts and errors, sortable by p(fake); self-contained.")
    flags.DEFINE_integer("threads", None, "Photos judged at once, each on an interpreter of its own (default: all "
                         "cores).", lower_bound=1)


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
        if FLAGS.html:
            check_output_file(FLAGS.html)
        detector = Detector(FLAGS.model, FLAGS.threads)
        bar = tqdm(total=len(paths), desc="photos", unit="img", leave=False, disable=len(paths) < 2)
        verdicts = []
        for prediction in detector.predict_many(paths, faces=FLAGS.faces, probes=FLAGS.probes):
            verdicts.append(prediction)
            bar.update()
        bar.close()
        rows = [v.to_dict() for v in verdicts]
        print(render(rows, FLAGS.format, FLAGS.probes))
        if FLAGS.html:
            from benchmark.contact_sheet import write_sheet
            print(f"written {write_sheet(verdicts, FLAGS.html, FLAGS.model, detector.threads)}", file=sys.stderr)
        all_failed.append(all(r["error"] for r in rows))

    code = run_main(job)
    if code == EXIT_DONE and all_failed and all_failed[0]:
        print("error: no photo could be read (see the error column)", file=sys.stderr)
        return EXIT_INPUT
    return code


if __name__ == "__main__":
    define_flags()
    main_entry(main, positional="photos, folders or globs")
