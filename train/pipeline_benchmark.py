"""`python -m train.pipeline_benchmark`: how much faster the tf.data pipeline (train/pipeline.py,
`make_dataset`) delivers preprocessed images, and feeds training, than a one-image-at-a-time loop.
Runs no longer read through it (since session 21 their views come from `ViewPool`, on every
core; docs/results.md §5), so this measures the pipeline itself, not a run.

Everything is measured in one run on the same images and reported as ratios to the loop, since
absolute speeds on a shared machine mean little. Training uses the config's model (random
weights: speed does not depend on their values) with its frozen trunk run at every step, fed
either by the loop (decode a batch, then train on it) or by the pipeline (decoding overlaps
training through prefetch).

Example:
  python -m train.pipeline_benchmark --data ../shared/data --config gan_ela --images 300
"""
from __future__ import annotations

import math
import os
import tempfile
import time

from absl import app, flags

from train.cli import main_entry, run_main
from train.configs import CONFIGS, PROTOCOLS, TrainConfig, get_config, with_fields
from train.pipeline import CACHES

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
flags.DEFINE_enum("config", "gan", list(CONFIGS), "Named config: its sources, preprocessing and model.")
flags.DEFINE_enum("protocol", None, list(PROTOCOLS), "Override the config's protocol.")
flags.DEFINE_integer("images", 300, "Train-split images to preprocess, split evenly over the config's sources.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Override the config's batch size.", lower_bound=1)
flags.DEFINE_integer("train_steps", 5, "Training steps (full batches) per training measurement.", lower_bound=1)
flags.DEFINE_integer("input_size", None, "Override the config's input size (pixels).")
flags.DEFINE_float("alpha", None, "Override the config's MobileNet width multiplier.")
flags.DEFINE_integer("repeats", 2, "Repeat every measurement this many times and report the fastest.", lower_bound=1)
flags.DEFINE_enum("cache", "auto", list(CACHES), "Pipeline cache (file caches go to a temporary folder; none: "
                  "decode every epoch).")
flags.DEFINE_string("out", None, "JSON file for the results (written atomically); default: print only.")


def loop_load(records, prep) -> list[tuple[object, int]]:
    """The straightforward input path: one file after another through Preprocessing.load;
    (image, label) of the readable ones."""
    from ela import ImageError
    out = []
    for r in records:
        try:
            out.append((prep.load(r.path), r.y))
        except ImageError:
            pass
    return out


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure_input(records, prep, batch_size: int, cache: str) -> list[dict]:
    """images/s of the loop, and of the pipeline (1 and 2 parallel calls) cold and cached."""
    from train.pipeline import make_dataset

    def epoch(ds) -> int:
        return sum(int(y.shape[0]) for _, y in ds)

    loaded, seconds = timed(lambda: loop_load(records, prep))
    rows = [{"name": "loop: Preprocessing.load one image at a time", "images_per_s": len(loaded) / seconds}]
    for calls in (1, 2):
        with tempfile.TemporaryDirectory(prefix="pipeline_cache_") as cache_dir:  # each build starts cold
            ds = make_dataset(records, prep, batch_size, parallel_calls=calls, cache=cache, cache_dir=cache_dir)
            for label in ("epoch 1 (cold)", "epoch 2 (cached)"):
                n, seconds = timed(lambda: epoch(ds))
                rows.append({"name": f"tf.data parallel_calls={calls}, {label}", "images_per_s": n / seconds})
    return rows


def build_trainer(cfg):
    """The config's model (frozen trunk + trainable tail, as train_run without the trunk cache),
    compiled and traced once, so no measurement pays for tracing."""
    import numpy as np

    from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded quietly)
    import tensorflow as tf
    import tf_keras

    from train.model import build_model, split_frozen_trunk

    model = build_model(cfg.model.input_size, cfg.model.alpha, "none", cfg.model.unfreeze, cfg.model.dropout,
                        grey=cfg.model.grey)
    trunk, tail = split_frozen_trunk(model)
    whole = tf_keras.Model(model.input, tail(trunk(model.input)))
    whole.compile(optimizer=tf_keras.optimizers.Adam(cfg.optim.learning_rate), loss="sparse_categorical_crossentropy")
    warm = np.zeros((cfg.optim.batch_size, cfg.model.input_size, cfg.model.input_size, 3), np.float32)
    whole.train_on_batch(warm, np.zeros(cfg.optim.batch_size, np.int64))
    whole.train_on_batch(tf.constant(warm), tf.zeros(cfg.optim.batch_size, tf.int64))
    return whole


def measure_training(records, prep, batch_size: int, trainer, steps: int, cache: str) -> list[dict]:
    """Training steps/s of `trainer` fed by the loop vs by the pipeline, cold and cached."""
    import numpy as np

    from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded quietly)
    import tensorflow as tf

    from train.pipeline import AUTOTUNE, make_dataset

    records = records[:steps * batch_size]
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]

    def fed_by_loop() -> int:
        for batch in batches:
            images, labels = zip(*loop_load(batch, prep))
            trainer.train_on_batch(np.stack(images).astype(np.float32), np.array(labels, np.int64))
        return len(batches)

    def fed_by(ds) -> int:
        done = 0
        for x, y in ds:
            trainer.train_on_batch(tf.cast(x, tf.float32), y)
            done += 1
        return done

    n, seconds = timed(fed_by_loop)
    rows = [{"name": "loop: decode a batch, then train on it", "steps_per_s": n / seconds, "steps": n}]
    with tempfile.TemporaryDirectory(prefix="pipeline_cache_") as cache_dir:
        ds = make_dataset(records, prep, batch_size, parallel_calls=AUTOTUNE, cache=cache, cache_dir=cache_dir)
        for label in ("epoch 1 (cold)", "epoch 2 (cached)"):
            n, seconds = timed(lambda: fed_by(ds))
            rows.append({"name": f"tf.data AUTOTUNE, {label}", "steps_per_s": n / seconds, "steps": n})
    return rows


def best_of(runs: list[list[dict]], key: str) -> list[dict]:
    """Per row, the fastest of the repeats: other jobs on a shared machine only ever slow a run down."""
    return [dict(max(same, key=lambda row: row[key]), repeats=[row[key] for row in same]) for same in zip(*runs)]


def with_ratios(rows: list[dict], key: str) -> list[dict]:
    return [dict(row, ratio=row[key] / rows[0][key]) for row in rows]


def markdown(title: str, rows: list[dict], key: str, unit: str) -> str:
    lines = [f"| {title} | {unit} (best) | × loop | {unit}, every repeat |", "|---|---:|---:|---|"]
    lines += [f"| {r['name']} | {r[key]:.2f} | {r['ratio']:.2f} | {', '.join(f'{v:.2f}' for v in r['repeats'])} |"
              for r in rows]
    return "\n".join(lines)


def config_from_flags() -> TrainConfig:
    """The named config with this benchmark's few overrides, validated by the config itself."""
    overrides = {k: FLAGS[k].value for k in ("protocol", "batch_size", "input_size", "alpha")
                 if FLAGS[k].value is not None}
    return with_fields(get_config(FLAGS.config), **overrides)


def run_benchmark(cfg: TrainConfig) -> dict:
    from train.data import DataError, load_records, select
    from train.io import atomic_write_json
    from train.pipeline import choose_cache

    records = load_records(FLAGS.data)
    missing = sorted(set(cfg.data.sources) - {r.source for r in records})
    if missing:
        raise DataError(f"{FLAGS.data}: config {cfg.name!r} needs source(s) {', '.join(missing)}, "
                        f"which the dataset lacks")
    chosen = select(records, cfg.data.sources, ["train"], math.ceil(FLAGS.images / len(cfg.data.sources)))[:FLAGS.images]
    prep = cfg.preprocessing()
    for r in chosen:  # the disk is read once before timing, so no variant pays for a cold page cache
        if r.path.is_file():
            r.path.read_bytes()

    trainer = build_trainer(cfg)
    input_runs, train_runs = [], []
    for _ in range(FLAGS.repeats):
        input_runs.append(measure_input(chosen, prep, cfg.optim.batch_size, FLAGS.cache))
        train_runs.append(measure_training(chosen, prep, cfg.optim.batch_size, trainer, FLAGS.train_steps, FLAGS.cache))
    input_rows = with_ratios(best_of(input_runs, "images_per_s"), "images_per_s")
    train_rows = with_ratios(best_of(train_runs, "steps_per_s"), "steps_per_s")
    result = {
        "config": cfg.name, "preprocessing": prep.to_dict(), "images": len(chosen), "batch_size": cfg.optim.batch_size,
        "cache": choose_cache(chosen, prep, FLAGS.cache, tempfile.gettempdir())[0], "cpus": os.cpu_count(),
        "repeats": FLAGS.repeats, "input": input_rows, "training": train_rows,
    }
    print(f"config {cfg.name} ({cfg.data.protocol}), {len(chosen)} images, preprocessing {prep.to_dict()}, "
          f"batch {cfg.optim.batch_size}, cache {result['cache']}, {os.cpu_count()} CPUs, best of {FLAGS.repeats}\n")
    print(markdown("input", input_rows, "images_per_s", "images/s"))
    print()
    print(markdown("training fed by", train_rows, "steps_per_s", "steps/s"))
    if FLAGS.out:
        atomic_write_json(FLAGS.out, result)
        print(f"\nwritten {FLAGS.out}")
    return result


def main(argv):
    try:
        cfg = config_from_flags()
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    return run_main(lambda: run_benchmark(cfg))


if __name__ == "__main__":
    main_entry(main)
