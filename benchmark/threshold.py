"""Choose a model's decision threshold on its validation split, for `convert --threshold`.

The paper used 0.5 and noted it may not suit every use. A phone app that must rarely accuse a
real photo wants a threshold with a bounded false-positive rate; others want balanced errors.

  python -m benchmark.threshold --model runs/gan/export/gan_int8.tflite --data ../shared/data --target fpr=0.05
  python -m convert --run runs/gan --threshold <printed value>
"""
from __future__ import annotations

import numpy as np
from absl import app, flags

from convert.metadata import read_model_info
from convert.runtime import TfliteModel
from train.cli import main_entry, run_main
from train.data import DataError, load_records, preprocess_records, select
from train.metrics import operating_point, parse_target


def choose_threshold(model_path: str, data: str, target: str) -> dict:
    """Scores of the model on the validation split of its own training sources → threshold."""
    info = read_model_info(model_path)
    sources = info.train_sources
    if not sources:
        raise DataError(f"{model_path}: its metadata does not say which sources it was trained on — re-export it")
    records = select(load_records(data), sources, ["val"])
    x, y, kept, skipped = preprocess_records(records, info.input_preprocessing, "validation images")
    if len(set(y.tolist())) < 2:
        raise DataError(f"{data}: the validation split of {', '.join(sources)} needs real and fake images")
    score = TfliteModel(model_path).probabilities(x)[:, 1]
    return {**operating_point(y, score, target, np.array([r.source for r in kept])), "skipped": len(skipped)}


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags exist only when run as a command, so importing this module from elsewhere defines none."""
    flags.DEFINE_string("model", None, "A FakeLens .tflite file.")
    flags.DEFINE_string("data", "demo_data", "Dataset holding the model's validation split.")
    flags.DEFINE_string("target", "balanced", "'balanced' (max balanced accuracy), 'fpr=<rate>' (e.g. fpr=0.05: at most "
                        "5% of validation reals called fake), 'source_fpr=<rate>' (at most that rate for every real "
                        "source), or 'fpr_bound=<rate>' / 'source_fpr_bound=<rate>' (at most that chance for a "
                        "new real photo, pooled / of each source: the conformal rank, "
                        "train.metrics.allowed_false_positives).")


def main(argv):
    if not FLAGS.model:
        raise app.UsageError("--model is required")
    try:
        parse_target(FLAGS.target)
    except ValueError as err:
        raise app.UsageError(str(err)) from None

    def job():
        r = choose_threshold(FLAGS.model, FLAGS.data, FLAGS.target)
        print(f"threshold {r['threshold']:.6f} for {r['target']} on validation (n={r['n']}): "
              f"accuracy {r['val_accuracy']:.3f}, FPR {r['val_fpr']:.3f}, TPR {r['val_tpr']:.3f}")
        print("called fake on validation: " + ", ".join(f"{s} {v:.3f}" for s, v in r["called_fake_by_source"].items()))
        print(f"write it into the model: python -m convert --run <run> --threshold {r['threshold']:.6f}")

    return run_main(job)


if __name__ == "__main__":
    define_flags()
    main_entry(main)
