"""`python -m benchmark.predict_speed`: how much faster `benchmark.predict` judges a folder of
photos than the plain loop, and at what memory cost.

Two paths over the same photos, each run in a fresh spawned process, alternately, --repeats times:
  loop      one interpreter with one thread, one photo after another: read, decode, preprocess
            (Preprocessing.load, as in training), invoke;
  parallel  `Detector(model, threads).predict_many`, as `python -m benchmark.predict` runs.
Reported: photos/s (the best repeat: other jobs on a shared machine only ever slow a run down),
the ratio parallel / loop measured in this run, CPU time per photo and cores kept busy (with N
cores the ratio cannot pass N × loop CPU / parallel CPU; on a busy machine cores used shows how
much of it the path got), and each process's peak resident memory (VmHWM), absolute and above
its baseline once the libraries are imported. Both paths must give
the same p(fake) for every photo; the command fails if they do not.

Example:
  python -m benchmark.predict_speed --model runs/fakelens/fakelens_none/export/fakelens_none_float32.tflite \\
      photos/ --limit 600
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from absl import app, flags

from benchmark.latency import reset_peak_memory, status_kib
from train.cli import main_entry, run_main
from train.data import DataError

PATHS = ("loop", "parallel")


def loop_scores(model: str, paths: list[str]) -> list[float | None]:
    """The plain way: one single-threaded interpreter, one photo at a time (None: unreadable)."""
    from convert.metadata import read_model_info
    from convert.runtime import TfliteModel
    from ela import ImageError

    prep = read_model_info(model).input_preprocessing
    interpreter = TfliteModel(model, num_threads=1)
    scores = []
    for path in paths:
        try:
            scores.append(float(interpreter.probabilities(prep.load(path)[None])[0, 1]))
        except ImageError:
            scores.append(None)
    return scores


def parallel_scores(model: str, paths: list[str], threads: int | None) -> list[float | None]:
    from benchmark.detector import Detector
    return [verdict.p_fake for verdict in Detector(model, threads).predict_many(paths)]


def run_path(path_name: str, model: str, paths: list[str], threads: int | None) -> dict:
    """One path over all photos in this process: photos/s (model loading included), CPU time per
    photo and cores kept busy (all threads; the CPU work a path adds or saves, whatever the machine's
    load), peak memory."""
    import benchmark.detector  # noqa: F401  (TensorFlow and Pillow load before the baseline)
    reset_peak_memory()
    baseline = status_kib("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    scores = loop_scores(model, paths) if path_name == "loop" else parallel_scores(model, paths, threads)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = status_kib("VmHWM")
    return {"path": path_name, "seconds": seconds, "images_per_s": len(paths) / seconds,
            "cpu_ms_per_image": 1000 * cpu_seconds / len(paths), "cores_used": cpu_seconds / seconds,
            "peak_mib": peak / 1024, "peak_above_baseline_mib": (peak - baseline) / 1024, "scores": scores}


def run_in_child(path_name: str, model: str, paths: list[str], threads: int | None) -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_path, path_name, model, paths, threads).result()


def measure(model: str, paths: list[str], threads: int | None, repeats: int) -> dict:
    """Both paths `repeats` times, alternating so that drift on the machine hits both alike."""
    for path in paths:  # the disk is read once before timing, so neither path pays for a cold page cache
        if os.path.isfile(path):
            with open(path, "rb") as f:
                f.read()
    runs = {name: [] for name in PATHS}
    for _ in range(repeats):
        for name in PATHS:
            runs[name].append(run_in_child(name, model, paths, threads))
    reference = runs["loop"][0]["scores"]
    for run in (r for name in PATHS for r in runs[name]):
        if run["scores"] != reference:
            differ = sum(a != b for a, b in zip(run["scores"], reference))
            raise RuntimeError(f"the {run['path']} path gave other scores than the loop for {differ} photo(s) — "
                               f"the parallel path must not change results; this is a bug")
    rows = []
    for name in PATHS:
        best = max(runs[name], key=lambda r: r["images_per_s"])
        rows.append({"path": name, "images_per_s": best["images_per_s"],
                     "repeats": [r["images_per_s"] for r in runs[name]], "cpu_ms_per_image": best["cpu_ms_per_image"],
                     "cores_used": best["cores_used"],
                     "peak_mib": max(r["peak_mib"] for r in runs[name]),
                     "peak_above_baseline_mib": max(r["peak_above_baseline_mib"] for r in runs[name])})
    for row in rows:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
    return {"model": model, "images": len(paths), "unreadable": sum(s is None for s in reference),
            "threads": threads or os.cpu_count(), "cpus": os.cpu_count(), "repeats": repeats, "paths": rows,
            "same_scores": True}


def render(result: dict) -> str:
    lines = [f"{result['images']} photos ({result['unreadable']} unreadable), {result['cpus']} CPUs, parallel path "
             f"with {result['threads']} threads, best of {result['repeats']}, each run in a fresh process; "
             f"both paths gave the same p(fake) for every photo", "",
             "| path | photos/s (best) | × loop | photos/s, every repeat | CPU ms / photo | cores used "
             "| peak RSS MiB | above baseline MiB |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in result["paths"]:
        lines.append(f"| {r['path']} | {r['images_per_s']:.1f} | {r['ratio']:.2f} "
                     f"| {', '.join(f'{v:.1f}' for v in r['repeats'])} | {r['cpu_ms_per_image']:.1f} "
                     f"| {r['cores_used']:.2f} | {r['peak_mib']:.0f} | {r['peak_above_baseline_mib']:.0f} |")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model", None, "A FakeLens .tflite file (exported by `python -m convert`).")
    flags.DEFINE_integer("limit", None, "Use this many of the photos, evenly spread over them in path order "
                         "(default: all).", lower_bound=1)
    flags.DEFINE_integer("threads", None, "Threads of the parallel path (default: all cores).", lower_bound=1)
    flags.DEFINE_integer("repeats", 2, "Run each path this many times and report the fastest.", lower_bound=1)
    flags.DEFINE_string("out", None, "JSON file for the results (written atomically); default: print only.")


def spread(paths: list[str], limit: int | None) -> list[str]:
    """`limit` of `paths`, evenly spaced, so every folder of a sorted listing is represented."""
    if not limit or limit >= len(paths):
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


def main(argv):
    if not FLAGS.model:
        raise app.UsageError("--model is required: a FakeLens .tflite file")
    if len(argv) < 2:
        raise app.UsageError("give the photos to judge after the flags: files, folders or globs")

    def job():
        from benchmark.predict import expand_inputs
        from convert.metadata import read_model_info
        from train.io import atomic_write_json

        read_model_info(FLAGS.model)  # a wrong model is one clear line here, not a child's traceback
        paths = spread(expand_inputs(argv[1:]), FLAGS.limit)
        if not paths:
            raise DataError(f"{', '.join(argv[1:])}: no image files found — give photos, folders with "
                            f"photos in them, or globs that match some")
        result = measure(FLAGS.model, paths, FLAGS.threads, FLAGS.repeats)
        print(render(result))
        if FLAGS.out:
            atomic_write_json(FLAGS.out, result)
            print(f"\nwritten {FLAGS.out}")

    return run_main(job)


if __name__ == "__main__":
    define_flags()
    main_entry(main, positional="photos, folders or globs")
