"""One training run: data → preprocessing (once per image) → frozen-trunk activations (once per
image) → train the unfrozen tail → a self-describing run folder.

run folder: config.json (resolved config, preprocessing, data summary), model.keras (the whole
model, best epoch by validation loss), checkpoints/best.weights.h5, history.csv, logs/
(TensorBoard), skipped.csv (files that could not be read).
"""
from __future__ import annotations

import collections
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from train.configs import TrainConfig  # noqa: E402
from train.data import DataError, Record, load_records, preprocess_records, select, write_skipped  # noqa: E402
from train.io import atomic_path, atomic_write_json  # noqa: E402
from train.model import build_model, mobilenet_trainable_count, split_frozen_trunk  # noqa: E402

FAKELENS_VERSION = "0.1.0"


class RunExistsError(RuntimeError):
    """The output folder already holds a finished run."""


def split_counts(records: list[Record]) -> dict:
    counts = collections.Counter((r.source, r.split) for r in records)
    return {f"{src}/{split}": n for (src, split), n in sorted(counts.items())}


def seed_everything(seed: int) -> None:
    tf_keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_run(cfg: TrainConfig, data: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Train `cfg` on the dataset at `data` into the run folder `out`; return `out`."""
    out = Path(out)
    if (out / "model.keras").exists() and not overwrite:
        raise RunExistsError(f"{out}: holds a finished run — choose another --out or pass --overwrite")
    started = time.time()
    seed_everything(cfg.seed)
    records = load_records(data)
    missing = sorted(set(cfg.sources) - {r.source for r in records})
    if missing:
        raise DataError(f"{data}: config {cfg.name!r} needs source(s) {', '.join(missing)} which the dataset lacks")
    train_recs = select(records, cfg.sources, ["train"], cfg.max_per_source)
    val_recs = select(records, cfg.sources, ["val"], cfg.max_per_source)
    prep = cfg.preprocessing()
    x_train, y_train, train_kept, skipped = preprocess_records(train_recs, prep, "train images")
    x_val, y_val, val_kept, skipped_val = preprocess_records(val_recs, prep, "val images")
    skipped += skipped_val
    for name, y in (("train", y_train), ("val", y_val)):
        if len(set(y.tolist())) < 2:
            raise DataError(f"{data}: the {name} split of {', '.join(cfg.sources)} has "
                            f"{'no images' if len(y) == 0 else 'a single class'} — both real and fake are needed")

    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    write_skipped(skipped, out / "skipped.csv")
    if skipped:
        print(f"{len(skipped)} of {len(train_recs) + len(val_recs)} files skipped, see {out / 'skipped.csv'}")
    model = build_model(cfg.input_size, cfg.alpha, cfg.weights, cfg.unfreeze, cfg.dropout)
    trunk, tail = split_frozen_trunk(model)
    summary = {
        "fakelens_version": FAKELENS_VERSION,
        "config": cfg.to_dict(),
        "data": {"path": str(Path(data).resolve()), "counts": split_counts(train_kept + val_kept), "skipped": len(skipped)},
        "model": {"trainable_mobilenet_layers": mobilenet_trainable_count(model),
                  "trunk_output_shape": list(trunk.output_shape[1:])},
    }
    atomic_write_json(out / "config.json", summary)

    if cfg.cache_trunk:
        print(f"frozen trunk: activations of {len(x_train) + len(x_val)} images, computed once")
        x_fit = trunk.predict(x_train.astype(np.float32), batch_size=cfg.batch_size, verbose=1)
        v_fit = trunk.predict(x_val.astype(np.float32), batch_size=cfg.batch_size, verbose=1)
        fit_model = tail
    else:  # the same computation, with the frozen layers run again at every step
        x_fit, v_fit = x_train.astype(np.float32), x_val.astype(np.float32)
        fit_model = tf_keras.Model(model.input, tail(trunk(model.input)), name="whole_model")
    fit_model.compile(optimizer=tf_keras.optimizers.Adam(cfg.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    best = out / "checkpoints" / "best.weights.h5"
    fit_model.fit(x_fit, y_train, validation_data=(v_fit, y_val), epochs=cfg.epochs, batch_size=cfg.batch_size,
                  shuffle=True, verbose=2, callbacks=[
                      tf_keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                                         save_weights_only=True),
                      tf_keras.callbacks.CSVLogger(str(out / "history.csv")),
                      tf_keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
                  ])
    fit_model.load_weights(str(best))
    val_loss, val_acc = fit_model.evaluate(v_fit, y_val, verbose=0)
    with atomic_path(out / "model.keras") as tmp:
        model.save(tmp)
    summary["result"] = {"val_loss": float(val_loss), "val_accuracy": float(val_acc),
                         "n_train": int(len(y_train)), "n_val": int(len(y_val)),
                         "wall_seconds": round(time.time() - started, 1)}
    atomic_write_json(out / "config.json", summary)
    print(f"{cfg.name}: best val accuracy {val_acc:.3f} (n={len(y_val)}), run folder {out}")
    return out
