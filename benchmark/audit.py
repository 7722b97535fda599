"""Format-bias audit: can file properties alone tell real from fake?

Real photos are mostly JPEG at one quality, fakes often PNG or JPEG at another quality, with a
different chroma subsampling or size. A detector (ELA above all) can learn those instead of the
image. This audit lists the properties per source and label, and fits the most trivial classifier
— a lookup from (format, JPEG quality, subsampling, width, height) to the majority label on the
train split — then scores it on balanced 50:50 test sets. A high score means the data has a
shortcut; under the format-controlled protocol it should fall to chance.

  python -m benchmark.audit --data ../shared/data [--protocol controlled] [--out reports/audit]
"""
from __future__ import annotations

import collections
import io
import os
import statistics
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags  # noqa: E402
from PIL import Image, JpegImagePlugin  # noqa: E402

from benchmark.metrics import wilson_interval  # noqa: E402
from benchmark.tables import TEST_SETS  # noqa: E402
from ela import FormatControl, ImageError, decode_rgb, read_image_bytes  # noqa: E402
from train.cli import main_entry, run_main  # noqa: E402
from train.data import Record, balance, load_records, select  # noqa: E402
from train.io import atomic_write_json, atomic_write_text  # noqa: E402

PROPERTIES = ("format", "quality", "subsampling", "size")
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
STRONG = 0.75  # a shortcut accuracy above this is flagged


@lru_cache(maxsize=1)
def _pillow_luma_tables() -> tuple[tuple[int, ...], ...]:
    """Pillow's own luminance table at each quality 1..100 (read back in Pillow's order)."""
    tables = []
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=q)
        with Image.open(buf) as img:
            tables.append(tuple(img.quantization[0]))
    return tuple(tables)


def estimate_jpeg_quality(luma_table) -> int:
    """The IJG quality whose scaled standard table is closest to `luma_table` (exact for files
    written by libjpeg-based encoders at a standard quality)."""
    table = tuple(luma_table)
    return 1 + min(range(100), key=lambda i: sum(abs(a - b) for a, b in zip(table, _pillow_luma_tables()[i])))


def file_properties(data: bytes, name: str = "<bytes>") -> dict:
    """Format, JPEG quality estimate, chroma subsampling and size of encoded image bytes."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            props = {"format": img.format or "?", "size": f"{img.width}x{img.height}", "quality": "-",
                     "subsampling": "-", "bytes_per_pixel": len(data) / max(1, img.width * img.height)}
            if img.format == "JPEG" and getattr(img, "quantization", None):
                props["quality"] = estimate_jpeg_quality(img.quantization[0])
                props["subsampling"] = SUBSAMPLING.get(JpegImagePlugin.get_sampling(img), "other")
            return props
    except Exception:
        raise ImageError(f"{name}: not an image Pillow can read — remove it or fix the manifest") from None


def record_properties(r: Record, control: FormatControl | None, size: int) -> dict:
    """Properties of the file a model would see: as stored, or as the controlled protocol re-encodes it."""
    data = read_image_bytes(r.path)
    if control is not None:
        data = control.encode(decode_rgb(data, str(r.path)), r.sha256, size)
    return file_properties(data, str(r.path))


def shortcut_accuracy(train: list[tuple[tuple, int]], test: list[tuple[tuple, int]]) -> dict:
    """Lookup classifier: signature → majority train label (unseen → overall majority)."""
    votes: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for key, y in train:
        votes[key][y] += 1
    overall = collections.Counter(y for _, y in train).most_common(1)[0][0] if train else 1
    correct = sum((votes[key].most_common(1)[0][0] if key in votes else overall) == y for key, y in test)
    low, high = wilson_interval(correct, len(test))
    return {"n": len(test), "accuracy": correct / len(test) if test else float("nan"), "ci95": [low, high]}


def audit(data: str, protocol: str = "as_is", input_size: int = 224) -> dict:
    control = FormatControl() if protocol == "controlled" else None
    records = load_records(data)
    props: dict[Path, dict] = {}
    skipped = []
    for r in records:
        try:
            props[r.path] = record_properties(r, control, input_size)
        except (ImageError, OSError) as err:
            skipped.append(str(err))
    by_source = []
    for (source, label), group in sorted(_group_items(records, props).items()):
        rows = [props[r.path] for r in group]
        qualities = [p["quality"] for p in rows if p["quality"] != "-"]
        by_source.append({
            "source": source, "label": label, "n": len(rows),
            "format": dict(collections.Counter(p["format"] for p in rows)),
            "quality": f"{min(qualities)}–{max(qualities)} (median {statistics.median(qualities):g})" if qualities else "-",
            "subsampling": dict(collections.Counter(p["subsampling"] for p in rows)),
            "size": dict(collections.Counter(p["size"] for p in rows).most_common(3)),
            "bytes_per_pixel": round(statistics.median(p["bytes_per_pixel"] for p in rows), 3),
        })
    pairs = {t.name: (t.real_sources, t.fake_sources) for t in TEST_SETS if t.real_sources}
    pairs["all real vs all fake"] = (tuple(sorted({r.source for r in records if r.label == "real"})),
                                     tuple(sorted({r.source for r in records if r.label == "fake"})))
    shortcuts = {}
    for name, (real, fake) in pairs.items():
        sources = real + fake
        train = [r for r in select(records, sources, ["train"]) if r.path in props]
        test = [r for r in balance(select(records, sources, ["test"])) if r.path in props]
        if not train or not test:
            continue
        result = {}
        for keys in [PROPERTIES] + [(p,) for p in PROPERTIES]:
            sig = lambda r: tuple(props[r.path][k] for k in keys)  # noqa: E731
            result["+".join(keys)] = shortcut_accuracy([(sig(r), r.y) for r in train], [(sig(r), r.y) for r in test])
        shortcuts[name] = result
    return {"data": str(Path(data).resolve()), "protocol": protocol, "sources": by_source,
            "shortcuts": shortcuts, "skipped": skipped}


def _group_items(records, props) -> dict[tuple[str, str], list[Record]]:
    """Readable records by (source, label)."""
    groups = collections.defaultdict(list)
    for r in records:
        if r.path in props:
            groups[(r.source, r.label)].append(r)
    return groups


def render(result: dict) -> str:
    fmt = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())  # noqa: E731
    lines = [f"Format-bias audit of `{result['data']}` — protocol: {result['protocol']}", "",
             "| source | label | n | format | JPEG quality | subsampling | commonest sizes | bytes/pixel (median) |",
             "|---|---|---:|---|---|---|---|---:|"]
    for s in result["sources"]:
        lines.append(f"| {s['source']} | {s['label']} | {s['n']} | {fmt(s['format'])} | {s['quality']} | "
                     f"{fmt(s['subsampling'])} | {fmt(s['size'])} | {s['bytes_per_pixel']} |")
    lines += ["", "Trivial classifier on file properties only (lookup fitted on train, scored on the balanced "
              "test split; chance = 0.5):", "",
              "| test set | n | all properties | format | quality | subsampling | size |", "|---|---:|---:|---:|---:|---:|---:|"]
    warnings = []
    for name, res in result["shortcuts"].items():
        cells = [f"{res[k]['accuracy']:.3f}" for k in ["+".join(PROPERTIES), *PROPERTIES]]
        lines.append(f"| {name} | {res['+'.join(PROPERTIES)]['n']} | " + " | ".join(cells) + " |")
        best = max(res.values(), key=lambda m: m["accuracy"])
        if best["accuracy"] > STRONG:
            warnings.append(f"WARNING: {name}: file properties alone separate real from fake "
                            f"(accuracy {best['accuracy']:.3f}) — a detector can learn the format, not the image; "
                            f"use --protocol controlled")
    if result["skipped"]:
        warnings.append(f"{len(result['skipped'])} file(s) could not be read and were left out")
    return "\n".join(lines + [""] + warnings)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags exist only when run as a command, so importing this module from elsewhere defines none."""
    flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
    flags.DEFINE_enum("protocol", "as_is", ["as_is", "controlled"], "Audit the files as stored, or as the "
                      "format-controlled protocol re-encodes them.")
    flags.DEFINE_integer("input_size", 224, "Image side the controlled protocol resizes to.")
    flags.DEFINE_string("out", None, "Folder for audit.md and audit.json (optional).")
    flags.DEFINE_bool("debug", False, "Show full tracebacks.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")

    def job():
        result = audit(FLAGS.data, FLAGS.protocol, FLAGS.input_size)
        text = render(result)
        print(text)
        if FLAGS.out:
            atomic_write_text(Path(FLAGS.out) / "audit.md", text + "\n")
            atomic_write_json(Path(FLAGS.out) / "audit.json", result)

    return run_main(job, FLAGS.debug)


if __name__ == "__main__":
    define_flags()
    main_entry(main)
