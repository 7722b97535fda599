"""Latency, memory and preprocessing cost of .tflite models with the ai-edge-litert interpreter.

Each model × thread count is measured in a fresh child process (multiprocessing, 'spawn'), so the
cold start (interpreter creation + first inference) is a real first load and the child's peak
resident memory above its baseline just before loading is the model's own. Absolute milliseconds
drift on shared machines; the report leads with ratios against the float32 export of the same run,
kind and thread count, measured in the same run.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from convert.runtime import TfliteModel
from convert.variants import reference_of
from ela import Preprocessing
from ela.files import MAX_MODEL_BYTES, read_regular
from ela.stderr_filter import filtered_stderr

STATUS = Path("/proc/self/status")
INTERPRETER_NOISE = ("Created TensorFlow Lite XNNPACK delegate for CPU.",)


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def reset_peak_memory() -> None:
    """Reset the kernel's high-water mark to the current RSS, so the peak read later belongs to
    what happens after this call, not to the imports before it."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(model_path: str, image: np.ndarray, threads: int, runs: int = 30, warmup: int = 5) -> dict:
    """In this process: cold = interpreter creation + first inference (ms); p50/p90/p99 over
    `runs` warm inferences after `warmup` more; peak memory above the pre-load baseline (MiB)."""
    content = read_regular(model_path, MAX_MODEL_BYTES, "model file")
    reset_peak_memory()
    baseline = status_kib("VmRSS")
    start = time.perf_counter()
    model = TfliteModel(content, num_threads=threads)
    model.invoke(image)
    cold = (time.perf_counter() - start) * 1000
    for _ in range(warmup):
        model.invoke(image)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.invoke(image)
        times.append((time.perf_counter() - t) * 1000)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"threads": threads, "runs": runs, "cold_ms": cold, "p50_ms": float(p50), "p90_ms": float(p90),
            "p99_ms": float(p99), "peak_mib": (status_kib("VmHWM") - baseline) / 1024}


def _measure_quietly(*args) -> dict:
    """`measure`, without the interpreter's notice that every fresh process repeats."""
    with filtered_stderr(INTERPRETER_NOISE):
        return measure(*args)


def measure_in_child(model_path: str | Path, image: np.ndarray, threads: int, runs: int = 30) -> dict:
    """`measure` in a fresh spawned process (nothing loaded or cached from earlier models)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure_quietly, str(model_path), image, threads, runs).result()


def add_ratios(rows: list[dict]) -> list[dict]:
    """p50, size and peak memory as ratios against the float32 row of the same run, kind and
    thread count (None where there is no such row)."""
    for row in rows:
        ref = reference_of(row, rows, variant_of=lambda r: r["variant"],
                           kind_of=lambda r: (r["kind"], r["threads"]))
        row["ratio"] = row["p50_ms"] / ref["p50_ms"] if ref else None
        row["size_ratio"] = row["size_bytes"] / ref["size_bytes"] if ref else None
        row["memory_ratio"] = row["peak_mib"] / ref["peak_mib"] if ref and ref["peak_mib"] > 0 else None
    return rows


def render_latency(rows: list[dict]) -> str:
    """rows: {"model", "variant", "size_bytes", "threads", "cold_ms", "p50_ms", "p90_ms", "p99_ms",
    "peak_mib", "ratio", "size_ratio", "memory_ratio"}."""
    ratio = lambda v: f"{v:.2f}" if v is not None else "–"  # noqa: E731
    lines = ["Latency (ai-edge-litert interpreter, one image, each model and thread count in a fresh process; "
             "cold = interpreter creation + first inference; peak = resident memory above the process's "
             "baseline before loading; ratios against the float32 export of the same run, kind and thread "
             "count, measured in this run)", "",
             "| model | variant | size (KiB) | size ratio | threads | cold ms | p50 ms | p90 ms | p99 ms "
             "| p50 ratio | peak MiB | memory ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {r['size_bytes'] / 1024:.0f} | {ratio(r['size_ratio'])} "
                     f"| {r['threads']} | {r['cold_ms']:.1f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
                     f"| {r['p99_ms']:.2f} | {ratio(r['ratio'])} | {r['peak_mib']:.1f} | {ratio(r['memory_ratio'])} |")
    return "\n".join(lines)


def describe(prep: Preprocessing) -> str:
    """A short human name for a preprocessing, e.g. "224 px, ELA q90 scale auto (full)"."""
    text = f"{prep.input_size} px"
    if prep.ela:
        text += f", ELA q{prep.ela.quality} scale {prep.ela.scale} ({prep.ela.resolution})"
    if prep.format_control:
        text += f", format control q{prep.format_control.quality_min}-{prep.format_control.quality_max}"
    return text


def _elapsed_ms(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return (time.perf_counter() - start) * 1000


def preprocessing_latency(prep: Preprocessing, paths: list[Path]) -> dict:
    """Milliseconds per image for read + decode + `prep` (ELA included when it has one), against
    plain read + decode + resize to the same size, timed image by image in turn so that drift
    on a shared machine hits both alike. A plain preprocessing is its own reference (ratio 1)."""
    plain = Preprocessing(input_size=prep.input_size)
    plain_ms, prep_ms = [], []
    for path in paths:
        plain_ms.append(_elapsed_ms(plain.load, path))
        prep_ms.append(plain_ms[-1] if prep == plain else _elapsed_ms(prep.load, path))
    mean_plain, mean_prep = float(np.mean(plain_ms)), float(np.mean(prep_ms))
    return {"preprocessing": prep.to_dict(), "description": describe(prep), "n": len(paths),
            "ms_per_image": mean_prep, "plain_ms_per_image": mean_plain, "ratio": mean_prep / mean_plain}


def render_preprocessing_latency(rows: list[dict]) -> str:
    """rows: preprocessing_latency results with the "models" that use each preprocessing."""
    if not rows:
        return ""
    lines = ["Preprocessing time per image on the caller's side (read + decode + the model's preprocessing; "
             "ratio against plain read + decode + resize, timed in turn in this run)", "",
             "| preprocessing | models | n | ms / image | plain ms / image | ratio |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['description']} | {', '.join(r['models'])} | {r['n']} | {r['ms_per_image']:.2f} "
                     f"| {r['plain_ms_per_image']:.2f} | {r['ratio']:.2f} |")
    return "\n".join(lines)
