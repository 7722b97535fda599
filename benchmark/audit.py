"""Format-bias audit: can file properties alone tell real from fake?

Real photos are mostly JPEG at one quality, fakes often PNG or JPEG at another quality, with a
different chroma subsampling or size. A detector (ELA above all) can learn those instead of the
image. This audit lists the properties per source and label, and fits the most trivial classifier
— a lookup from (format, JPEG quality, subsampling, width, height) to the majority label on the
train split — then scores it on balanced 50:50 test sets. A high score means the data has a
shortcut; under the format-controlled protocol it should fall to chance. The properties and the
classifier are `train.format_audit`'s, which the model card of every export reports too.

With --content it also asks the same of the *content*: a logistic regression on ImageNet
MobileNet features of 32-pixel thumbnails (framing, pose, skin tone, headwear; no generator
trace survives), fitted on the train split, scored by ROC AUC on the test split. A high AUC
means the classes differ in who is pictured and how, which no format control removes
(train/content_balance.py weights training against it).

  python -m benchmark.audit --data ../shared/data [--protocol controlled] [--content] [--out reports/audit]
"""
from __future__ import annotations

import collections
import statistics
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmark.tables import TEST_SETS
from ela import FormatControl, Preprocessing
from train.cli import main_entry, run_main
from train.configs import PROTOCOLS
from train.content_balance import THUMBNAIL, content_features, content_regression
from train.data import Record, load_records, preprocess_records, select
from train.format_audit import PROPERTIES, STRONG, read_properties, shortcuts, strongest
from train.io import atomic_write_json, atomic_write_text
from train.metrics import roc_auc


def audit(data: str, protocol: str = "as_is", input_size: int = 224, content: bool = False) -> dict:
    control = FormatControl() if protocol == "controlled" else None
    records = load_records(data)
    props, skipped = read_properties(records, control, input_size)
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
    found = {name: shortcuts(records, props, real + fake) for name, (real, fake) in pairs.items()}
    return {"data": str(Path(data).resolve()), "protocol": protocol, "sources": by_source,
            "shortcuts": {name: res for name, res in found.items() if res}, "skipped": skipped,
            **({"content": content_shortcuts(records, pairs, Preprocessing(input_size, format_control=control))}
               if content else {})}


def content_shortcuts(records: list[Record], pairs: dict[str, tuple], prep: Preprocessing) -> dict[str, dict]:
    """Per pair of sources: ROC AUC on the test split of a content-only regression fitted on the
    train split (each class weighted equally)."""
    wanted = sorted({s for real, fake in pairs.values() for s in real + fake})
    x, y, kept, _ = preprocess_records(select(records, wanted, ["train", "test"]), prep, "content thumbnails")
    features = content_features(x)
    result = {}
    for name, (real, fake) in pairs.items():
        mine = np.array([r.source in real + fake for r in kept])
        train, test = mine & np.array([r.split == "train" for r in kept]), mine & np.array([r.split == "test" for r in kept])
        if len(set(y[train])) < 2 or len(set(y[test])) < 2:
            continue
        w = np.where(y[train] == 1, 1 / (y[train] == 1).sum(), 1 / (y[train] == 0).sum())
        p = content_regression(features[train], y[train], w)(features[test])
        result[name] = {"auc": round(roc_auc(y[test], p), 4), "n_train": int(train.sum()), "n_test": int(test.sum())}
    return result


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
        _, best = strongest(res)
        if best["accuracy"] > STRONG:
            warnings.append(f"WARNING: {name}: file properties alone separate real from fake "
                            f"(accuracy {best['accuracy']:.3f}) — a detector can learn the format, not the image; "
                            f"use --protocol controlled")
    if result.get("content"):
        lines += ["", f"Content only ({THUMBNAIL}-px thumbnails, ImageNet MobileNet features, logistic regression "
                  "fitted on train; ROC AUC on the test split; chance = 0.5):", "",
                  "| test set | n train | n test | ROC AUC |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {r['n_train']} | {r['n_test']} | {r['auc']:.3f} |" for name, r in result["content"].items()]
        warnings += [f"WARNING: {name}: content alone separates real from fake (ROC AUC {r['auc']:.3f}) — the classes "
                     f"differ in who is pictured and how; train with --set data.content_balance=5"
                     for name, r in result["content"].items() if r["auc"] > STRONG]
    if result["skipped"]:
        warnings.append(f"{len(result['skipped'])} file(s) could not be read and were left out")
    return "\n".join(lines + [""] + warnings)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags exist only when run as a command, so importing this module from elsewhere defines none."""
    flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
    flags.DEFINE_enum("protocol", "as_is", list(PROTOCOLS), "Audit the files as stored, or as the "
                      "format-controlled protocol re-encodes them.")
    flags.DEFINE_integer("input_size", 224, "Image side the controlled protocol resizes to.", lower_bound=32)
    flags.DEFINE_bool("content", False, "Also audit the content: how well 32-px thumbnails (no generator traces) "
                      "separate the classes (ImageNet MobileNet features; a few minutes on a CPU).")
    flags.DEFINE_string("out", None, "Folder for audit.md and audit.json (optional).")


def main(argv):

    def job():
        result = audit(FLAGS.data, FLAGS.protocol, FLAGS.input_size, FLAGS.content)
        text = render(result)
        print(text)
        if FLAGS.out:
            atomic_write_text(Path(FLAGS.out) / "audit.md", text + "\n")
            atomic_write_json(Path(FLAGS.out) / "audit.json", result)

    return run_main(job)


if __name__ == "__main__":
    define_flags()
    main_entry(main)
