"""`python -m train`: train a FakeLens detector from a named config.

Example:
  python -m train --config gan --data ../shared/data --out runs/gan
"""
from __future__ import annotations

from absl import app, flags

from ela.transform import RESOLUTIONS
from train.cli import EXIT_DONE, main_entry, run_main
from train.configs import (CONFIGS, LR_SCALINGS, LR_SCHEDULES, PROTOCOLS, STRATEGIES, TrainConfig, get_config,
                           override, with_fields)

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "demo", list(CONFIGS), "Named experiment config.")
flags.DEFINE_string("data", "demo_data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
flags.DEFINE_string("out", None, "Run folder to create (default: runs/<config>).")
flags.DEFINE_integer("epochs", None, "Override the config's epoch count.", lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Override the batch size.", lower_bound=1)
flags.DEFINE_float("alpha", None, "Override the MobileNet width multiplier.")
flags.DEFINE_integer("input_size", None, "Override the square input size in pixels.")
flags.DEFINE_string("weights", None, "'imagenet' (Keras cache/download), 'none', or a path to a no-top .h5 file.")
flags.DEFINE_integer("unfreeze", None, "Override how many of MobileNet's last layers are trainable.")
flags.DEFINE_float("dropout", None, "Override the dropout rate before the classifier.")
flags.DEFINE_float("learning_rate", None, "Override Adam's learning rate.")
flags.DEFINE_list("sources", None, "Override the config's training sources (default of `fakelens`: every source "
                  "of the data that has training images).")
flags.DEFINE_list("exclude_sources", None, "Leave these sources out of training, e.g. a generator to test on as "
                  "never seen (leave-one-generator-out).")
flags.DEFINE_integer("views", None, "Override how many augmented views of each training image are made "
                     "(configs with augmentation; epoch e trains on view e % views).", lower_bound=1)
flags.DEFINE_enum("lr_schedule", None, list(LR_SCHEDULES), "Override the learning rate over the run: constant, "
                  "or cosine decay from --learning_rate to 0 over all steps.")
flags.DEFINE_integer("max_per_source", None, "Use at most this many images per source and split.", lower_bound=1)
flags.DEFINE_enum("protocol", None, list(PROTOCOLS),
                  "as_is: files as they are; controlled: resize + JPEG re-encode every image (format bias removed).")
flags.DEFINE_integer("seed", None, "Random seed.")
flags.DEFINE_enum("ela_resolution", None, list(RESOLUTIONS), "Override where ELA is computed: on the decoded "
                  "image ('full') or on the resized model input ('resized', needed for convert --ela_in_graph).")
flags.DEFINE_bool("cache_trunk", None, "Compute the frozen layers once per image and train the tail on them "
                  "(default); --nocache_trunk runs the whole model at every step (same result, slower).")
flags.DEFINE_bool("experts", None, "Train one tail of the unfrozen layers per fake source (each on every real "
                  "image and that source's fakes) behind the shared frozen layers; a photo is fake when any tail "
                  "says so. --noexperts: one tail for all.")
flags.DEFINE_enum("strategy", "default", list(STRATEGIES),
                  "default: this process's device; mirrored: all local devices; multi_worker: the machines "
                  "listed in the TF_CONFIG environment variable (run the same command on each).")
flags.DEFINE_enum("lr_scaling", "linear", list(LR_SCALINGS), "With N replicas a step takes N × batch_size "
                  "images; 'linear' multiplies the learning rate by N, 'none' keeps the config's.")
flags.DEFINE_bool("overwrite", False, "Replace a finished or interrupted run in --out (without it, an "
                  "interrupted run of the same config resumes).")
flags.DEFINE_multi_string("set", [], "Set any config field: --set group.field=value (repeatable; groups data, "
                          "model, optim; e.g. --set optim.learning_rate=3e-4 --set data.augment.grey_p=0.3; a field "
                          "only one group has may drop the group: --set augment.jpeg_quality=[60,100]); applied after "
                          "the named flags.")
flags.DEFINE_bool("list_configs", False, "Print the named configs and exit.")

OVERRIDES = ("epochs", "batch_size", "alpha", "input_size", "weights", "unfreeze", "dropout", "learning_rate", "lr_schedule",
             "max_per_source", "protocol", "seed", "cache_trunk", "experts")


def main(argv):
    if FLAGS.list_configs:
        for name, cfg in CONFIGS.items():
            print(f"{name:16s} {cfg.description}")
        return EXIT_DONE

    try:
        cfg = config_from_flags()
    except ValueError as err:  # a value out of range, or an override the config cannot take
        raise app.UsageError(str(err)) from None

    def job():
        from train.run import train_run  # TensorFlow loads only when there is work
        train_run(cfg, FLAGS.data, FLAGS.out or f"runs/{cfg.name}", FLAGS.overwrite, FLAGS.strategy, FLAGS.lr_scaling)

    return run_main(job)


def config_from_flags() -> TrainConfig:
    """The named config with the flags' overrides, each validated by the config itself."""
    cfg = get_config(FLAGS.config)
    cfg = with_fields(cfg, **{k: FLAGS[k].value for k in OVERRIDES if FLAGS[k].value is not None})
    for name in ("sources", "exclude_sources"):
        if FLAGS[name].value is not None:
            cfg = with_fields(cfg, **{name: tuple(FLAGS[name].value)})
    if FLAGS.views is not None:
        if cfg.data.augment is None:
            raise ValueError(f"--views: config {cfg.name!r} uses no augmentation")
        cfg = with_fields(cfg, **{"augment.views": FLAGS.views})
    cfg = override(cfg, FLAGS.set)
    if FLAGS.ela_resolution:
        if cfg.data.ela is None:
            raise ValueError(f"--ela_resolution: config {cfg.name!r} uses no ELA")
        cfg = with_fields(cfg, **{"ela.resolution": FLAGS.ela_resolution})
    return cfg


if __name__ == "__main__":
    main_entry(main)
