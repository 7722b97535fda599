"""`python -m benchmark`: accuracy (paper's Tables 1-2 layout) and latency of exported .tflite models.

Example:
  python -m benchmark --models runs/gan/export --data ../shared/data --out reports/gan
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags  # noqa: E402

from train.cli import main_entry, run_main  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, ".tflite files or folders of them (exported by `python -m convert`).")
flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
flags.DEFINE_string("out", "reports/latest", "Folder for benchmark.md, benchmark.json and skipped.csv.")
flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts for the latency table.")
flags.DEFINE_integer("latency_runs", 30, "Timed inferences per model and thread count (after 5 warm-up runs).")
flags.DEFINE_bool("debug", False, "Show full tracebacks.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.models:
        raise app.UsageError("--models is required: .tflite files or folders of them")

    def job():
        from benchmark.run import evaluate, find_models, write_report
        result = evaluate(find_models(FLAGS.models), FLAGS.data, [int(t) for t in FLAGS.threads], FLAGS.latency_runs)
        print(write_report(result, FLAGS.out))
        print(f"\nreport: {FLAGS.out}/benchmark.md, {FLAGS.out}/benchmark.json")

    return run_main(job, FLAGS.debug)


if __name__ == "__main__":
    main_entry(main)
