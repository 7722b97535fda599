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
from benchmark.tables import TEST_SETS, accuracy, render_table
from train.data import DataError, load_records, preprocess_records, write_skipped
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
    cache: dict[str, dict] = {}  # preprocessing → test set → (x, y)
    skipped = []
    results = {}
    for name, (path, info) in infos.items():
        key = json.dumps(info.preprocessing.to_dict(), sort_keys=True)
        if key not in cache:
            cache[key] = {}
            for set_name, recs in sets.items():
                x, y, _, bad = preprocess_records(recs, info.preprocessing, f"{set_name} images")
                cache[key][set_name] = (x, y)
                skipped.extend(bad)
        model = TfliteModel(path)
        per_set = {}
        for set_name, (x, y) in cache[key].items():
            if len(y):
                per_set[set_name] = accuracy(y, model.probabilities(x)[:, 1], info.threshold)
        results[name] = {"path": str(path), "config": info.config, "variant": info.variant,
                         "run": info.extra.get("run", ""), "threshold": info.threshold, "sets": per_set}

    latency = []
    probe = next(x for c in cache.values() for x, _ in c.values() if len(x))
    for name, (path, info) in infos.items():
        content = path.read_bytes()
        image = np.full((info.preprocessing.input_size,) * 2 + (3,), 128, np.uint8)
        if probe.shape[1] == info.preprocessing.input_size:
            image = probe[0]
        for threads in latency_threads:
            row = measure(content, image, threads, latency_runs)
            row.update(model=name, variant=info.variant, run=info.extra.get("run", ""), size_bytes=len(content))
            latency.append(row)
    for row in latency:  # ratios against the float32 export of the same run, same thread count
        ref = next((r for r in latency if r["variant"] == "float32" and r["run"] == row["run"]
                    and r["threads"] == row["threads"]), None)
        row["ratio"] = row["p50_ms"] / ref["p50_ms"] if ref else None
        row["size_ratio"] = row["size_bytes"] / ref["size_bytes"] if ref else None
    return {"data": str(Path(data).resolve()), "models": results, "latency": latency, "skipped": skipped}


def write_report(result: dict, out: str | Path) -> str:
    """Write benchmark.md, benchmark.json and skipped.csv under `out`; return the Markdown."""
    out = Path(out)
    text = "\n\n".join([render_table(1, result["models"]), render_table(2, result["models"]),
                        render_latency(result["latency"])])
    if result["skipped"]:
        text += f"\n\n{len(result['skipped'])} image(s) could not be read and were skipped: see skipped.csv"
    atomic_write_text(out / "benchmark.md", f"# FakeLens benchmark\n\nData: `{result['data']}`\n\n{text}\n")
    serialisable = dict(result, skipped=[{"path": str(s.path), "reason": s.reason} for s in result["skipped"]])
    atomic_write_json(out / "benchmark.json", serialisable)
    write_skipped(result["skipped"], out / "skipped.csv")
    return text
