"""One benchmark run: every model on every test set, robustness to perturbations, invariance
probes, uncertain verdicts, quantisation damage, latency and memory, preprocessing cost, then the
report files.

Each model's preprocessing comes from its own metadata (`convert.metadata.read_model_info`),
never from flags; models that share a preprocessing share the decoded, preprocessed images, and
every section reads the same per-image scores (`benchmark.scores`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from convert.metadata import ModelInfo, read_model_info
from convert.runtime import TfliteModel
from convert.variants import REFERENCE
from benchmark.cards import write_cards
from benchmark.gradcam import gallery, render_gradcam
from benchmark.html_report import write_html
from benchmark.invariance import PROBES, invariance_rows, render_invariance
from benchmark.latency import (add_ratios, measure_in_child, preprocessing_latency, render_latency,
                               render_preprocessing_latency)
from benchmark.metrics import accuracy, detection_metrics, roc_auc, roc_curve
from benchmark.quantization import quantization_rows, render_quantization
from benchmark.robustness import CONDITIONS, render_robustness, robustness_rows
from benchmark.scores import labelled, prep_key, score_images
from benchmark.tables import TEST_SETS, render_detection, render_held_out, render_table
from benchmark.uncertainty import render_uncertain, uncertain_rows
from train.data import DataError, Record, load_records, preprocess_records, select, write_skipped
from train.io import atomic_write_json, atomic_write_text

ROC_POINTS = 200  # enough for a smooth curve in a report, small enough for benchmark.json


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


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = ROC_POINTS) -> dict:
    """The ROC curve, evenly thinned to at most `max_points` points (ends kept), for plotting."""
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), max_points)).round().astype(int))
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}


def model_results(path: Path, info: ModelInfo, p_fake: dict[Path, float], sets: dict[str, list[Record]],
                  test_records: list[Record]) -> dict:
    """One model's entry of result["models"]: Tables 1-2 metrics per set (detection metrics and
    the ROC curve on the 50:50 sets) and its held-out generators."""
    per_set = {}
    for ts in TEST_SETS:
        y, p = labelled(sets[ts.name], p_fake)
        if len(y):
            per_set[ts.name] = accuracy(y, p, info.threshold)
            if ts.real_sources and len(set(y.tolist())) == 2:
                per_set[ts.name]["detail"] = detection_metrics(y, p, info.threshold)
                per_set[ts.name]["roc"] = roc_points(y, p)
    trained_on = info.train_sources
    y_real, p_real = labelled([r for r in test_records if r.label == "real"], p_fake)
    held_out = {}
    for source in sorted({r.source for r in test_records if r.label == "fake"} - set(trained_on)):
        y_fake, p_src = labelled([r for r in test_records if r.source == source], p_fake)
        if len(y_fake):
            metrics = accuracy(y_fake, p_src, info.threshold)
            metrics["n_fake"] = metrics["n"]
            metrics["auc"] = roc_auc(np.concatenate([y_real, y_fake]), np.concatenate([p_real, p_src]))
            held_out[source] = metrics
    return {"path": str(path), "config": info.config, "variant": info.variant, "run": info.run,
            "threshold": info.threshold, "sets": per_set, "train_sources": list(trained_on), "held_out": held_out}


def run_folder(path: Path) -> Path | None:
    """The training run an export came from, when it sits where `convert` put it (<run>/export/)."""
    folder = path.resolve().parent.parent
    return folder if (folder / "model.keras").is_file() and (folder / "config.json").is_file() else None


def gradcam_galleries(infos: dict[str, tuple[Path, ModelInfo]], scores: dict, records: list[Record],
                      per_cell: int) -> dict:
    """One Grad-CAM gallery per training run (heat comes from the run's Keras model, so its
    exports would all show the same maps), sampled by the decisions of the run's float32 export
    when it is benchmarked, else of its first export. Exports whose run folder is not beside
    them get none."""
    by_run: dict[Path, str] = {}
    for name, (path, info) in infos.items():
        folder = run_folder(path)
        if folder is not None and (folder not in by_run or (info.variant == REFERENCE and not info.ela_in_graph
                                                              and not info.mirror_average)):
            by_run[folder] = name
    return {name: gallery(folder, records, scores[name], infos[name][1].threshold, per_cell)
            for folder, name in by_run.items()}


def evaluate(models: list[Path], data: str, latency_threads=(1, 2), latency_runs: int = 30,
             conditions=tuple(CONDITIONS), gradcam_per_cell: int = 3, probes=tuple(PROBES),
             split: str = "test") -> dict:
    """Everything `write_report` writes, as one JSON-ready dict (skipped files as `Skipped`).
    `split`: which split the test sets are drawn from ("val" to compare recipes without
    looking at the test split)."""
    infos: dict[str, tuple[Path, ModelInfo]] = {}
    for path in models:
        info = read_model_info(path)
        if info.name in infos:  # reports are keyed by model name: one would silently replace the other
            raise ValueError(f"{infos[info.name][0]} and {path} are both named {info.name!r} in their metadata — "
                             f"benchmark them separately, or export one again from a run folder with another name")
        infos[info.name] = (path, info)
    records = load_records(data)
    if not any(ts.records(records, split) for ts in TEST_SETS):
        raise DataError(f"{data}: none of the benchmark test sets' sources are present "
                        f"({', '.join(sorted({s for t in TEST_SETS for s in t.fake_sources + t.real_sources}))})")
    test_records = select(records, splits=[split])
    images: dict[str, dict[Path, np.ndarray]] = {}  # preprocessing → path → model input, computed once
    skipped, results, loaded, scores = [], {}, {}, {}
    for _, info in infos.values():
        key = prep_key(info.input_preprocessing)
        if key not in images:
            x, _, kept, bad = preprocess_records(test_records, info.input_preprocessing, "test images")
            images[key] = {r.path: img for r, img in zip(kept, x)}
            skipped.extend(bad)
    # 50:50 sets are drawn from the readable images, so an unreadable one cannot unbalance a set
    unreadable = {s.path for s in skipped}
    test_records = [r for r in test_records if r.path not in unreadable]
    sets = {ts.name: ts.records(test_records, split) for ts in TEST_SETS}
    for name, (path, info) in infos.items():
        key = prep_key(info.input_preprocessing)
        loaded[name] = TfliteModel(path)
        scores[name] = score_images(loaded[name], images[key])
        results[name] = model_results(path, info, scores[name], sets, test_records)

    balanced = {ts.name: sets[ts.name] for ts in TEST_SETS if ts.real_sources and sets[ts.name]}
    robustness = robustness_rows({name: (info, loaded[name]) for name, (_, info) in infos.items()}, balanced,
                                 list(conditions), scores)
    invariance = invariance_rows({name: (info, loaded[name]) for name, (_, info) in infos.items()},
                                 {name: recs for name, recs in sets.items() if recs}, test_records, list(probes),
                                 scores)
    uncertain = uncertain_rows({name: info for name, (_, info) in infos.items()}, scores, test_records)
    quantization = quantization_rows({name: info for name, (_, info) in infos.items()}, scores, sets)
    balanced_records = [r for recs in balanced.values() for r in recs]
    gradcam = gradcam_galleries(infos, scores, balanced_records, gradcam_per_cell) if gradcam_per_cell else {}

    latency = []
    for name, (path, info) in infos.items():
        key = prep_key(info.input_preprocessing)
        image = next(iter(images[key].values()), np.full((info.preprocessing.input_size,) * 2 + (3,), 128, np.uint8))
        for threads in latency_threads:
            row = measure_in_child(path, image, threads, latency_runs)
            row.update(model=name, variant=info.variant, run=info.run,
                       size_bytes=path.stat().st_size, kind=info.kind)
            latency.append(row)
    preprocessing = []
    for key in (k for k in images if images[k]):
        users = [(name, info) for name, (_, info) in infos.items() if prep_key(info.input_preprocessing) == key]
        row = preprocessing_latency(users[0][1].input_preprocessing, list(images[key])[:latency_runs])
        preprocessing.append(dict(row, models=[name for name, _ in users]))
    return {"data": str(Path(data).resolve()), "split": split, "models": results, "robustness": robustness,
            "invariance": invariance, "uncertain": uncertain,
            "quantization": quantization, "gradcam": gradcam, "latency": add_ratios(latency),
            "preprocessing_latency": preprocessing,
            "skipped": skipped}


def write_report(result: dict, out: str | Path) -> str:
    """Write benchmark.md, benchmark.json, report.html (self-contained: tables, plots, Grad-CAM
    images), skipped.csv and cards/<model>.md (each model's card with its invariance probes)
    under `out`; return the Markdown."""
    out = Path(out)
    parts = [render_table(1, result["models"]), render_table(2, result["models"]), render_detection(result["models"]),
             render_held_out(result["models"]), render_robustness(result["robustness"]),
             render_invariance(result.get("invariance", [])), render_uncertain(result.get("uncertain", [])),
             render_quantization(result["quantization"]), render_gradcam(result.get("gradcam", {})),
             render_latency(result["latency"]),
             render_preprocessing_latency(result["preprocessing_latency"])]
    text = "\n\n".join(p for p in parts if p)
    if result["skipped"]:
        text += f"\n\n{len(result['skipped'])} image(s) could not be read and were skipped: see skipped.csv"
    split = result.get("split", "test")
    atomic_write_text(out / "benchmark.md", f"# FakeLens benchmark\n\nData: `{result['data']}`, {split} split\n\n{text}\n")
    serialisable = dict(result, skipped=[{"path": str(s.path), "reason": s.reason} for s in result["skipped"]])
    atomic_write_json(out / "benchmark.json", serialisable)
    write_html(serialisable, out / "report.html")
    write_skipped(result["skipped"], out / "skipped.csv")
    write_cards(result, out)
    return text
