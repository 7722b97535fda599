"""`python -m benchmark`: accuracy (paper's Tables 1-2 layout), detection metrics, held-out
generators, robustness to JPEG/resize/blur, invariance probes, quantisation damage against float32, latency and
memory of exported .tflite models — with optional gates for CI.

Example:
  python -m benchmark --models runs/gan/export,runs/gan_sd/export --data ../shared/data --report reports/gan
  python -m benchmark --models runs/gan/export --data ../shared/data --robustness none \\
      --max_quant_drop 2 --fail_below auc=0.9,balanced_accuracy=0.8 --max_flip 0.03

Exit codes: 0 done, 1 usage mistake (bad flags), 2 unusable input (one `error:` line), 3 report
written but a gate failed (one `gate failed:` line per violation on stderr).
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

from benchmark.gates import gate_failures, parse_floors
from benchmark.invariance import PROBE_TEXT, PROBES, parse_probes
from benchmark.robustness import CONDITIONS, parse_conditions
from train.cli import EXIT_DONE, EXIT_GATE, main_entry, run_main

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, ".tflite files or folders of them (exported by `python -m convert`).")
flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
flags.DEFINE_enum("split", "test", ["test", "val"], "Split the test sets are drawn from: the test split, or the "
                  "validation split to compare recipes without looking at the test split.")
flags.DEFINE_string("out", "reports/latest", "Report folder: benchmark.md, benchmark.json, report.html (one "
                    "self-contained page with plots and Grad-CAM images), skipped.csv and cards/<model>.md (each "
                    "model's card with the invariance probes filled in).")
flags.DEFINE_alias("report", "out")
flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts for the latency table.")
flags.DEFINE_integer("latency_runs", 30, "Timed inferences per model and thread count (after 5 warm-up runs), "
                     "each model in a fresh process; also the number of images whose preprocessing is timed.", lower_bound=1)
flags.DEFINE_list("robustness", list(CONDITIONS),
                  "Perturbations applied to each decoded test image before the model's own preprocessing, for "
                  "the robustness table on the 50:50 sets: original, jpeg95/jpeg75/jpeg50 (re-saved as JPEG at "
                  "that quality), downscale0.5 (half size, then the usual resize), blur1 (Gaussian blur, "
                  "radius 1 px), reencode2 (JPEG q90 then q75); 'none' skips the table.")
flags.DEFINE_list("invariance", list(PROBES), "Invariance probes: changes that must not change a decision, "
                  "applied to every test image before the model's own preprocessing (" + PROBE_TEXT + "); "
                  "'none' skips them.")
flags.DEFINE_float("max_flip", None, "Gate: exit 3 when any invariance probe flips more than this share "
                   "(0..1) of a model's decisions on any test set.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("gradcam", 3, "Grad-CAM images per decision category (true/false positive/negative) for "
                     "each benchmarked run whose Keras model sits beside its export (<run>/export/); 0 skips it.",
                     lower_bound=0)
flags.DEFINE_float("max_quant_drop", None, "Gate: exit 3 when any quantised model loses more than this many "
                   "accuracy or AUC points against the float32 export of its run on any test set.")
flags.DEFINE_list("fail_below", [], "Gate: floors metric=value,... on the 50:50 sets for every model, with metric "
                  "one of accuracy, balanced_accuracy, auc (e.g. auc=0.9,accuracy=0.8); exit 3 when any is missed.")


def main(argv):
    if not FLAGS.models:
        raise app.UsageError("--models is required: .tflite files or folders of them")
    try:
        conditions = parse_conditions(FLAGS.robustness)
        probes = parse_probes(FLAGS.invariance)
        floors = parse_floors(FLAGS.fail_below)
        threads = [int(t) for t in FLAGS.threads if t.isdigit() and int(t) >= 1]
        if not threads or len(threads) < len(FLAGS.threads):
            raise ValueError(f"--threads must be whole numbers of at least 1, got {','.join(FLAGS.threads)}")
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    failures = []

    def job():
        from benchmark.run import evaluate, find_models, write_report
        from train.io import make_folder, output_lock
        out = Path(FLAGS.out)
        with output_lock(out):
            existed = out.exists()
            make_folder(out)  # an unusable report folder fails now, not after the whole benchmark
            try:
                result = evaluate(find_models(FLAGS.models), FLAGS.data, threads, FLAGS.latency_runs, conditions,
                                  FLAGS.gradcam, probes, FLAGS.split)
            except BaseException:
                if not existed and not any(out.iterdir()):
                    out.rmdir()  # a failed run leaves no empty report folder behind
                raise
            print(write_report(result, FLAGS.out))
        print(f"\nreport: {FLAGS.out}/report.html, {FLAGS.out}/benchmark.md, {FLAGS.out}/benchmark.json; "
              f"model cards: {FLAGS.out}/cards/")
        failures.extend(gate_failures(result, floors, FLAGS.max_quant_drop, FLAGS.max_flip))

    code = run_main(job)
    for failure in failures:
        print(f"gate failed: {failure}", file=sys.stderr)
    return EXIT_GATE if code == EXIT_DONE and failures else code


if __name__ == "__main__":
    main_entry(main)
