"""One benchmark run: every model on every test set, then latency, then the report files.

Each model's preprocessing comes from its own metadata (`convert.metadata.read_model_info`),
never from flags; models that share a preprocessing share the decoded, preprocessed images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convert.metadata import ModelInfo, read_model_info
from convert.runtime import TfliteModel
from benchmark.latency import measure, render_latency
from benchmark.metrics import accuracy, detection_metrics, roc_auc
from benchmark.tables import TEST_SETS, render_detection, render_held_out, render_table
from train.data import DataError, load_records, preprocess_records, select, write_skipped
from train.io import atomic_write_json, atomic_write_text


def find_models(paths: list[str]) -> list[Path]:
    """.tflite files named directly or found (sorted) in named folders."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.glob("*.tflite")))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such model file or folder")
    if not found:
        raise FileNotFoundError(f"no .tflite files in {', '.join(paths)} — export some with `python -m convert`")
    return found


def train_sources(info: ModelInfo) -> list[str]:
    """The sources a model was trained on, from the data counts its export recorded."""
    return sorted({key.split("/")[0] for key in info.extra.get("data_counts", {})})


def evaluate(models: list[Path], data: str, latency_threads=(1, 2), latency_runs: int = 30) -> dict:
    infos: dict[str, tuple[Path, ModelInfo]] = {}
    for path in models:
        info = read_model_info(path)
        infos[info.name] = (path, info)
    records = load_records(data)
    sets = {ts.name: ts.records(records) for ts in TEST_SETS}
    if not any(sets.values()):
        raise DataError(f"{data}: none of the benchmark test sets' sources are present "
                        f"({', '.join(sorted({s for t in TEST_SETS for s in t.fake_sources + t.real_sources}))})")
    test_records = select(records, splits=["test"])
    real_test = [r for r in test_records if r.label == "real"]
    images: dict[str, dict[Path, np.ndarray]] = {}  # preprocessing → path → model input, computed once
    skipped = []
    results = {}
    for name, (path, info) in infos.items():
        key = json.dumps(info.input_preprocessing.to_dict(), sort_keys=True)
        if key not in images:
            x, _, kept, bad = preprocess_records(test_records, info.input_preprocessing, "test images")
            images[key] = {r.path: img for r, img in zip(kept, x)}
            skipped.extend(bad)
        model = TfliteModel(path)
        paths = list(images[key])
        probs = model.probabilities(np.stack([images[key][p] for p in paths]))[:, 1] if paths else []
        p_fake = dict(zip(paths, probs))

        def scores(recs):
            kept = [r for r in recs if r.path in p_fake]
            return np.array([r.y for r in kept], np.int64), np.array([p_fake[r.path] for r in kept], np.float64)

        per_set = {}
        for ts in TEST_SETS:
            y, p = scores(sets[ts.name])
            if len(y):
                per_set[ts.name] = accuracy(y, p, info.threshold)
                if ts.real_sources and len(set(y.tolist())) == 2:
                    per_set[ts.name]["detail"] = detection_metrics(y, p, info.threshold)
        trained_on = train_sources(info)
        held_out = {}
        for source in sorted({r.source for r in test_records if r.label == "fake"} - set(trained_on)):
            y_fake, p_src = scores([r for r in test_records if r.source == source])
            y_real, p_real = scores(real_test)
            if len(y_fake):
                metrics = accuracy(y_fake, p_src, info.threshold)
                metrics["n_fake"] = metrics["n"]
                metrics["auc"] = roc_auc(np.concatenate([y_real, y_fake]), np.concatenate([p_real, p_src]))
                held_out[source] = metrics
        results[name] = {"path": str(path), "config": info.config, "variant": info.variant,
                         "run": info.extra.get("run", ""), "threshold": info.threshold, "sets": per_set,
                         "train_sources": trained_on, "held_out": held_out}

    latency = []
    for name, (path, info) in infos.items():
        content = path.read_bytes()
        key = json.dumps(info.input_preprocessing.to_dict(), sort_keys=True)
        image = next(iter(images[key].values()), np.full((info.preprocessing.input_size,) * 2 + (3,), 128, np.uint8))
        for threads in latency_threads:
            row = measure(content, image, threads, latency_runs)
            row.update(model=name, variant=info.variant, run=info.extra.get("run", ""), size_bytes=len(content),
                       ela_in_graph=info.ela_in_graph)
            latency.append(row)
    for row in latency:  # ratios against the float32 export of the same run and kind, same thread count
        ref = next((r for r in latency if r["variant"] == "float32" and r["run"] == row["run"]
                    and r["ela_in_graph"] == row["ela_in_graph"] and r["threads"] == row["threads"]), None)
        row["ratio"] = row["p50_ms"] / ref["p50_ms"] if ref else None
        row["size_ratio"] = row["size_bytes"] / ref["size_bytes"] if ref else None
    return {"data": str(Path(data).resolve()), "models": results, "latency": latency, "skipped": skipped}


def write_report(result: dict, out: str | Path) -> str:
    """Write benchmark.md, benchmark.json and skipped.csv under `out`; return the Markdown."""
    out = Path(out)
    parts = [render_table(1, result["models"]), render_table(2, result["models"]), render_detection(result["models"]),
             render_held_out(result["models"]), render_latency(result["latency"])]
    text = "\n\n".join(p for p in parts if p)
    if result["skipped"]:
        text += f"\n\n{len(result['skipped'])} image(s) could not be read and were skipped: see skipped.csv"
    atomic_write_text(out / "benchmark.md", f"# FakeLens benchmark\n\nData: `{result['data']}`\n\n{text}\n")
    serialisable = dict(result, skipped=[{"path": str(s.path), "reason": s.reason} for s in result["skipped"]])
    atomic_write_json(out / "benchmark.json", serialisable)
    write_skipped(result["skipped"], out / "skipped.csv")
    return text
