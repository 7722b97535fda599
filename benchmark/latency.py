"""Latency of .tflite files with the ai-edge-litert interpreter: cold start, warm p50/p90, per
thread count. Absolute milliseconds drift on shared machines; the report leads with ratios
against float32 measured in the same run."""
from __future__ import annotations

import time

import numpy as np

from convert.runtime import TfliteModel


def measure(model_bytes: bytes, image: np.ndarray, threads: int, runs: int = 30, warmup: int = 5) -> dict:
    """Milliseconds: cold = interpreter creation + first inference; p50/p90 over `runs` warm ones."""
    start = time.perf_counter()
    model = TfliteModel(model_bytes, num_threads=threads)
    model.invoke(image)
    cold = (time.perf_counter() - start) * 1000
    for _ in range(warmup):
        model.invoke(image)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.invoke(image)
        times.append((time.perf_counter() - t) * 1000)
    return {"threads": threads, "cold_ms": cold, "p50_ms": float(np.percentile(times, 50)),
            "p90_ms": float(np.percentile(times, 90)), "runs": runs}


def render_latency(rows: list[dict]) -> str:
    """rows: {"model", "variant", "run", "size_bytes", "threads", "p50_ms", "p90_ms", "cold_ms", "ratio"}."""
    lines = ["Latency (ai-edge-litert interpreter, one image; ratio = p50 / float32 p50 of the same run, "
             "same thread count, measured in this run)", "",
             "| model | variant | size (KiB) | size ratio | threads | p50 ms | p90 ms | cold ms | p50 ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "–"
        size_ratio = f"{r['size_ratio']:.2f}" if r.get("size_ratio") is not None else "–"
        lines.append(f"| {r['model']} | {r['variant']} | {r['size_bytes'] / 1024:.0f} | {size_ratio} | {r['threads']} "
                     f"| {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['cold_ms']:.1f} | {ratio} |")
    return "\n".join(lines)
