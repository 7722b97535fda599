"""One training run: data → preprocessing on every core (once per image and augmented view,
train/pipeline.py) → frozen-trunk activations (once per view) → train the unfrozen tail → a
self-describing run folder.

With augmentation (`cfg.data.augment`), each training image is decoded and augmented `views` times
(train.augment: a pure function of seed, view and content) and epoch e trains on view e % views;
without it there is one view, the image as it is. With `cfg.optim.consistency`, epoch e trains on
views 2e and 2e + 1 of each image at once, with a loss that asks both for the same verdict
(train/consistency.py). The loss can weight each class, and each
source within a class, equally (`cfg.data.balance`), so neither a fake-heavy nor a real-heavy dataset
turns into "one class by default", and no single collection defines what "real" looks like; and
so that the content of a photo (who is in it, how it is framed) does not tell the classes apart
(`cfg.data.content_balance`, train/content_balance.py).

run folder: config.json (resolved config, distribution, preprocessing, data summary with the
manifest's sha256, result: validation loss, accuracy — loss-weighted, as trained — and ROC AUC),
model.keras (the whole model, best epoch by validation loss), checkpoints/best.weights.h5,
history.csv, logs/ (TensorBoard), skipped.csv (files that could not be read), and while the run
is unfinished backup/ (model + optimizer after the last finished epoch, for resuming). With
`cfg.model.experts` (train/experts.py) one tail is trained per fake source, one after the other on
the same views, each in experts/<source>/ (history.csv, checkpoints/, logs/, backup/, and once
done result.json and expert.weights.h5), and model.keras joins them.

A run killed at any point resumes when started again with the same command: from its last
finished epoch, with the optimizer's state, the epoch's data order (a function of seed and
epoch) and the best validation loss so far, so it ends where an uninterrupted run would
(experts: finished tails are read back, the interrupted one resumes).
"""
from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import io
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import logging
from tqdm import tqdm

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tf_keras

from ela import __version__
from train import consistency
from train.configs import DataConfig, TrainConfig, with_fields
from train.content_balance import content_balance
from train.data import DataError, Record, load_records, manifest_sha256, select, write_skipped
from train.distribute import (Placement, make_placement, same_on_every_worker, scaled_learning_rate,
                              shard_by_data, weights_sha256)
from train.experts import expert_rows, expert_sources, join_experts
from train.io import atomic_path, atomic_write_json, atomic_write_text, make_folder, output_lock
from train.metrics import roc_auc
from train.model import build_model, mobilenet_trainable_count, split_frozen_trunk, train_precision
from train.pipeline import ViewPool
from train.run_folder import seed_everything



class RunExistsError(RuntimeError):
    """The output folder already holds a finished run, or an interrupted run of another config."""


def split_counts(records: list[Record]) -> dict:
    counts = collections.Counter((r.source, r.split) for r in records)
    return {f"{src}/{split}": n for (src, split), n in sorted(counts.items())}


def resume_key(summary: dict) -> dict:
    """What must be equal for a run folder's backup to continue: the config, the data and the
    training that the replicas make of them. The config is compared as TrainConfig reads it, so a
    backup written before the config had groups (a flat config.json) resumes too."""
    return {"config": _readable_config(summary.get("config")), "data": summary.get("data", {}).get("path"),
            "global_batch_size": summary.get("training", {}).get("global_batch_size"),
            "learning_rate": summary.get("training", {}).get("learning_rate")}


def _readable_config(config):
    """`config` in the layout `TrainConfig.to_dict` writes now, or as it is if it is no config."""
    try:
        return TrainConfig.from_dict(config).to_dict()
    except (KeyError, TypeError, ValueError, AttributeError):
        return config


def run_state(out: Path, summary: dict, overwrite: bool) -> tuple[int, str | None]:
    """(epochs finished by an interrupted run in `out`, to resume after — summed over its tails
    with model.experts; or -1 and why `out` cannot be used). Never raises, so every worker
    reaches the agreement check."""
    if overwrite:
        return 0, None
    if (out / "model.keras").exists():
        return -1, f"{out}: holds a finished run — choose another --out or pass --overwrite"
    epochs = summary["config"]["optim"]["epochs"]
    done = sum(epochs_done(folder, epochs) for folder in [out, *sorted((out / "experts").glob("*"))])
    if not done:
        return 0, None
    saved = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    if resume_key(saved) != resume_key(summary):
        return -1, (f"{out}: holds an interrupted run with another config, data, batch or learning rate — "
                    f"choose another --out, or pass --overwrite to start afresh")
    return done, None


def continue_history(path: Path, finished: int) -> None:
    """Keep history.csv's rows of the `finished` epochs only: a run killed between logging an
    epoch and backing it up logged one epoch more, which the resumed run logs again. (A
    non-chief worker's temporary folder has no history.)"""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [row for row in reader if int(row["epoch"]) < finished]
        text = io.StringIO()
        writer = csv.DictWriter(text, reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


class KeepBest(tf_keras.callbacks.Callback):
    """Remember the weights of the epoch with the lowest val_loss in variables that the backup
    checkpoints too (so a resumed run still knows the best epoch before the kill), and save them
    as `path`. Unlike ModelCheckpoint, which deletes a non-chief worker's file at once, this
    lets every worker put the best weights back at the end."""

    def __init__(self, weights: list[np.ndarray], path: Path):
        super().__init__()
        self.path = path
        self.best_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.best_weights = [tf.Variable(w, trainable=False) for w in weights]

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_loss"] < self.best_loss.numpy():
            self.best_loss.assign(logs["val_loss"])
            for variable, value in zip(self.best_weights, self.model.get_weights()):
                variable.assign(value)
            with atomic_path(self.path) as tmp:
                self.model.save_weights(str(tmp))

    def restore(self) -> None:
        self.model.set_weights([w.numpy() for w in self.best_weights])


class EpochDropoutSeeds(tf_keras.callbacks.Callback):
    """Reset every dropout layer's random generator from (seed, epoch) when an epoch begins, so
    an epoch's masks do not depend on the epochs before it: a resumed run draws what the
    uninterrupted run drew. (tf_keras keeps these generators out of checkpoints and offers no
    public handle on them, hence the private attributes, in this one place.)"""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model.submodules:  # at any depth: the whole-model path nests the tail
            if isinstance(layer, tf_keras.layers.Dropout) and layer.rate > 0:
                rng = layer._random_generator
                rng._maybe_init()
                if rng._generator is not None:
                    rng._generator.reset_from_seed(self.seed * 1_000_003 + epoch)


class EpochBackup(tf_keras.callbacks.Callback):
    """Checkpoint model and optimizer after every epoch as backup/ckpt-<finished epochs>; the
    previous one is removed only once the new one is complete, so a kill never loses both."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=epoch + 1)


def epoch_rows(y: np.ndarray, w: np.ndarray, seed: int, epoch: int,
               real_share: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(order, weights) of one epoch: the indices of `y` it trains on, in the order drawn from (seed,
    epoch), and their loss weights. With `real_share` < 1 only that share of the real images (y == 0)
    is kept, the first ones in that order (so a fresh draw each epoch), shuffled again with every
    fake so that each batch mixes the classes as the epoch does (kept in place, the reals would run
    out before the fakes and the epoch would end on batches of fakes alone), and their weights are
    scaled by all reals / kept ones, so both classes weigh what they weigh on all images.
    Why: reals outnumber each generator's fakes 3-5 to 1 in data v2, and an experts tail trains on
    every real image, so they are most of each epoch's time; the fakes are the scarce class."""
    draw = tf.constant([seed, epoch], tf.int64)
    order = tf.random.experimental.stateless_shuffle(tf.range(len(y), dtype=tf.int64), seed=draw).numpy()
    reals = int(np.sum(y == 0))
    kept = epoch_size(y, real_share) - (len(y) - reals)
    if kept == reals:
        return order, w[order]
    order = order[(y[order] != 0) | (np.cumsum(y[order] == 0) <= kept)]
    order = order[tf.random.experimental.stateless_shuffle(
        tf.range(len(order), dtype=tf.int64), seed=tf.random.experimental.stateless_fold_in(draw, 1)).numpy()]
    return order, np.where(y[order] == 0, w[order] * (reals / kept), w[order]).astype(np.float32)


def epoch_size(y: np.ndarray, real_share: float = 1.0) -> int:
    """How many of the images labelled `y` one epoch trains on: every fake and `real_share` of the reals."""
    reals = int(np.sum(y == 0))
    return len(y) - reals + math.ceil(real_share * reals)


def epoch_batches(views: np.ndarray, y: np.ndarray, w: np.ndarray, batch: int, seed: int, first_epoch: int,
                  epochs: int, paired: bool = False, rows: np.ndarray | None = None,
                  real_share: float = 1.0) -> tf.data.Dataset:
    """Global batches (x as float32, y, sample weight) of epochs first_epoch..epochs-1 from `views`
    (V, N, ...; float16 with `optim.cache_float16`): epoch e reads view e % V, in its own order
    drawn from (seed, epoch), so a resumed run sees the batches the uninterrupted run would have.
    `paired`: x is (B, 2, ...), each image in views 2e % V and (2e + 1) % V, so e paired epochs
    read the views that 2e unpaired ones would. Batches are gathered from the arrays in place (a
    tf.data graph would hold copies of several GiB of activations). `rows`: the images of `views`
    that y and w label (one tail's share of them, model.experts); default all. `real_share`: see
    `epoch_rows`."""
    rows = np.arange(views.shape[1]) if rows is None else rows

    def batches():
        for epoch in range(first_epoch, epochs):
            order, weights = epoch_rows(y, w, seed, epoch, real_share)
            for start in range(0, len(order), batch):
                i = order[start:start + batch]
                image = rows[i]
                if paired:
                    x = np.stack([views[2 * epoch % len(views)][image], views[(2 * epoch + 1) % len(views)][image]], 1)
                else:
                    x = views[epoch % len(views)][image]
                yield x.astype(np.float32, copy=False), y[i], weights[start:start + batch]
    shape = ((None, 2) if paired else (None,)) + views.shape[2:]
    spec = (tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)


def loss_weights(records: list[Record], data: DataConfig) -> np.ndarray:
    """Per-image loss weights, mean 1: with `data.balance`, each class gets half of the total
    weight and each source a share of its class's half, equal or as `data.source_weights` say;
    otherwise all ones."""
    if not data.balance:
        return np.ones(len(records), np.float32)
    per_source = collections.Counter(r.source for r in records)
    named = data.source_weight_map()
    share = {s: named.get(s, 1.0) for s in per_source}
    class_total = collections.Counter()
    for label, source in {(r.label, r.source) for r in records}:
        class_total[label] += share[source]
    classes = len(class_total)
    w = [len(records) * share[r.source] / (classes * class_total[r.label] * per_source[r.source]) for r in records]
    return np.array(w, np.float32)


def resolve_sources(cfg: TrainConfig, records: list[Record], data) -> TrainConfig:
    """`cfg` with its sources spelled out: the configured ones, or (for `sources=()`) every
    source with training images; minus `exclude_sources`. Source weights of sources not trained
    on are noted and ignored."""
    present = {r.source for r in records}
    wanted = cfg.data.sources or tuple(sorted({r.source for r in records if r.split == "train"}))
    missing = sorted((set(wanted) | set(cfg.data.exclude_sources)) - present)
    if missing:
        raise DataError(f"{data}: config {cfg.name!r} needs source(s) {', '.join(missing)} which the dataset lacks")
    sources = tuple(s for s in wanted if s not in cfg.data.exclude_sources)
    unused = sorted(set(cfg.data.source_weight_map()) - set(sources))
    if unused:  # a config's weights may name a source that a user's dataset, or a held-out run, lacks
        print(f"note: source_weights name {', '.join(unused)}, which this run does not train on; ignored")
    return with_fields(cfg, sources=sources)


def train_run(cfg: TrainConfig, data: str | Path, out: str | Path, overwrite: bool = False,
              strategy: str = "default", lr_scaling: str = "linear") -> Path:
    """Train `cfg` on the dataset at `data` into the run folder `out` (resuming an interrupted
    run there); return `out`. With several workers only the chief writes `out`; the others work
    in a temporary folder that is removed at the end."""
    out = Path(out)
    placement = make_placement(strategy)  # first: multi-worker collectives are set up at program start
    with output_lock(out) if placement.is_chief else contextlib.nullcontext():
        return _train_run(cfg, data, out, overwrite, placement, lr_scaling)


def _train_run(cfg: TrainConfig, data: str | Path, out: Path, overwrite: bool, placement: Placement,
               lr_scaling: str) -> Path:
    started = time.time()
    seed_everything(cfg.seed)
    finished = not overwrite and (out / "model.keras").exists()  # refused below without reading the data
    records = [] if finished else load_records(data)
    if not finished:
        cfg = resolve_sources(cfg, records, data)
    summary = {
        "fakelens_version": __version__,
        "config": json.loads(json.dumps(cfg.to_dict())),
        "data": {"path": str(Path(data).resolve()), "manifest_sha256": manifest_sha256(data)},
        "training": {"strategy": placement.name, "workers": placement.num_workers, "replicas": placement.replicas,
                     "batch_size_per_replica": cfg.optim.batch_size,
                     "global_batch_size": cfg.optim.batch_size * placement.replicas,
                     "lr_scaling": lr_scaling,
                     "learning_rate": scaled_learning_rate(cfg.optim.learning_rate, placement.replicas, lr_scaling)},
    }
    first_epoch, problem = run_state(out, summary, overwrite)
    if not same_on_every_worker(placement, first_epoch):
        raise RuntimeError(f"{out}: the workers found different run states here (this one: "
                           f"{problem or f'{first_epoch} epochs done'}) — give every worker the same --out on a "
                           f"file system they share, or --overwrite")
    if problem:
        raise RunExistsError(problem)
    if first_epoch and cfg.model.experts:
        print(f"resuming {out} ({first_epoch} epochs of its tails done)")
    elif first_epoch:
        print(f"resuming {out} from epoch {first_epoch} ({first_epoch} of {cfg.optim.epochs} epochs done)")
    work = out if placement.is_chief else Path(tempfile.mkdtemp(prefix="fakelens-worker-"))
    try:
        return fit_and_save(cfg, data, records, out, work, placement, summary, first_epoch, started)
    finally:
        if work != out:
            shutil.rmtree(work, ignore_errors=True)


def require_both_classes(data, cfg: TrainConfig, y_train, y_val) -> None:
    for name, y in (("train", y_train), ("val", y_val)):
        if len(set(np.asarray(y).tolist())) < 2:
            raise DataError(f"{data}: the {name} split of {', '.join(cfg.data.sources)} has "
                            f"{'no images' if len(y) == 0 else 'a single class'} — both real and fake are needed")


class ViewInputs:
    """The model inputs of one split, one view at a time: the images as they are (one view), or
    `views` augmented versions of them. The views are decoded, augmented and preprocessed by a
    pool of threads (`train.pipeline.ViewPool`), the next one while the caller works on this
    one, so at most two views of images are in memory at once. `needed`: how many of the views
    (0, 1, ...) the caller will ask for, when fewer than all (QAT's epochs): none past them is
    decoded ahead."""

    def __init__(self, cfg: TrainConfig, records: list[Record], desc: str, augment: bool, needed: int | None = None):
        self.cfg, self.records, self.desc = cfg, records, desc
        self.augment = augment and cfg.data.augment is not None
        self.count = cfg.data.augment.views if self.augment else 1
        self.pool = ViewPool(records, cfg.preprocessing(), cfg.data.augment if self.augment else None, cfg.seed,
                             min(self.count, needed or self.count), desc)
        self.decode_seconds = 0.0  # time spent waiting for views (what the threads did meanwhile is hidden)

    def view(self, index: int) -> tuple[np.ndarray, list[Record], list]:
        """(uint8 images (N, S, S, 3), the records kept, the unreadable files skipped)."""
        tick = time.time()
        result = self.pool.view(index)
        if index == 0:  # the same files in every view
            for skipped in result[2]:
                logging.warning("skipped %s", skipped.reason)
        self.decode_seconds += time.time() - tick
        return result


def fit_inputs(trunk: tf_keras.Model, x: np.ndarray, cfg: TrainConfig, out: np.ndarray | None = None) -> np.ndarray:
    """What the trained part sees of images `x`: the frozen trunk's activations (computed once),
    or the images as floats; written into `out` (e.g. one view of the float16 cache) or a new
    float32 array. In chunks, so no float32 copy of all images or activations is ever made
    (a view's activations are 2.5 GB as float32)."""
    shape = trunk.output_shape[1:] if cfg.optim.cache_trunk else x.shape[1:]
    out = np.empty((len(x),) + tuple(shape), np.float32) if out is None else out
    chunk = 512
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float32)
        if cfg.optim.cache_trunk:  # without it, the same computation with the frozen layers run at every step
            part = trunk.predict(part, batch_size=cfg.optim.batch_size, verbose=0)
        out[i:i + chunk] = part
    return out


def fit_and_save(cfg: TrainConfig, data: str | Path, records: list[Record], out: Path, work: Path,
                 placement: Placement, summary: dict, first_epoch: int, started: float) -> Path:
    """The run itself, writing into `work` (the run folder, or a worker's temporary folder);
    the backup to resume from is read from `out`."""
    train_recs = select(records, cfg.data.sources, ["train"], cfg.data.max_per_source)
    val_recs = select(records, cfg.data.sources, ["val"], cfg.data.max_per_source)
    require_both_classes(data, cfg, [r.y for r in train_recs], [r.y for r in val_recs])
    make_folder(work / "checkpoints")  # an unusable --out or missing weights fail before the slow part
    model = build_model(cfg.model.input_size, cfg.model.alpha, cfg.model.weights, cfg.model.unfreeze, cfg.model.dropout,
                        grey=cfg.model.grey)
    trunk, _ = split_frozen_trunk(model)
    val_inputs = ViewInputs(cfg, val_recs, "val images", augment=False)
    train_inputs = ViewInputs(cfg, train_recs, "train images", augment=True)
    x_val, val_kept, skipped = val_inputs.view(0)
    x_train, train_kept, skipped_train = train_inputs.view(0)  # unreadable files are the same in every view
    skipped = skipped_train + skipped
    y_train = np.array([r.y for r in train_kept], np.int64)
    y_val = np.array([r.y for r in val_kept], np.int64)
    require_both_classes(data, cfg, y_train, y_val)  # again: unreadable files may have removed a class
    experts = expert_sources(train_kept) if cfg.model.experts else []
    # (name, train rows, val rows, folder) of each tail: one for all, or one per fake source
    tails = [(source, expert_rows(train_kept, source), expert_rows(val_kept, source), Path("experts") / source)
             for source in experts] or [(cfg.name, np.arange(len(y_train)), np.arange(len(y_val)), Path())]
    train_weights = [loss_weights([train_kept[i] for i in rows], cfg.data) for _, rows, *_ in tails]
    content_timing = {}
    if cfg.data.content_balance:  # within each tail's images: content must not separate what that tail separates
        tick = time.time()
        reports = {}
        for k, (name, rows, *_) in enumerate(tails):
            train_weights[k], report = content_balance(cfg, [train_kept[i] for i in rows], train_weights[k])
            reports[name] = report
            print(f"content balance{f' ({name})' if experts else ''}: content alone separates the training classes "
                  f"at ROC AUC {report['content_auc']:.3f}, {report['weighted_content_auc']:.3f} under the new weights")
        summary["data"]["content_balance"] = reports if experts else report
        content_timing["content_balance_s"] = round(time.time() - tick, 1)

    if not first_epoch:
        shutil.rmtree(work / "backup", ignore_errors=True)
        shutil.rmtree(work / "experts", ignore_errors=True)
    write_skipped(skipped, work / "skipped.csv")
    if skipped:
        print(f"{len(skipped)} of {len(train_recs) + len(val_recs)} files skipped, see {out / 'skipped.csv'}")
    global_batch = summary["training"]["global_batch_size"]
    summary["training"]["steps_per_epoch"] = sum(
        math.ceil(epoch_size(y_train[rows], cfg.optim.real_share) / global_batch) for _, rows, *_ in tails)
    summary["data"]["counts"] = split_counts(train_kept + val_kept)
    summary["data"]["skipped"] = len(skipped)
    summary["model"] = {"trainable_mobilenet_layers": mobilenet_trainable_count(model),
                        "trunk_output_shape": list(trunk.output_shape[1:]), **({"experts": experts} if experts else {})}
    atomic_write_json(work / "config.json", summary)

    if cfg.optim.cache_trunk:  # each worker computes them itself: the trunk is frozen, so they need no exchange
        print(f"frozen trunk: activations of {train_inputs.count} view(s) of {len(y_train)} training and "
              f"{len(y_val)} validation images, computed once")
    trunk_seconds, tick = 0.0, time.time()
    v_fit = fit_inputs(trunk, x_val, cfg)
    fit_views = np.empty((train_inputs.count, len(x_train)) + v_fit.shape[1:],  # filled in place: several GiB
                         np.float16 if cfg.optim.cache_trunk and cfg.optim.cache_float16 else np.float32)
    fit_inputs(trunk, x_train, cfg, fit_views[0])
    del x_train
    trunk_seconds += time.time() - tick
    for view in tqdm(range(1, train_inputs.count), desc="augmented views", unit="view", leave=False):
        x, _, _ = train_inputs.view(view)
        tick = time.time()
        fit_inputs(trunk, x, cfg, fit_views[view])
        trunk_seconds += time.time() - tick
    timing = {"decode_val_s": round(val_inputs.decode_seconds, 1),
              "decode_augment_train_s": round(train_inputs.decode_seconds, 1), "trunk_s": round(trunk_seconds, 1),
              **content_timing, "fit_s": 0.0}
    fitted, results = [], {}
    for (name, rows, val_rows, folder), weights in zip(tails, train_weights):
        if experts:
            print(f"tail {len(fitted) + 1} of {len(tails)}: every real image and the fakes of {name}")
        tail_model, result = fit_tail(
            cfg, Tail(fit_views, rows, y_train[rows], weights),
            Tail(v_fit, val_rows, y_val[val_rows], loss_weights([val_kept[i] for i in val_rows], cfg.data)),
            out / folder, work / folder, placement, global_batch, summary["training"]["learning_rate"],
            epochs_done(out / folder, cfg.optim.epochs) if experts else first_epoch, expert=bool(experts))
        fitted.append(tail_model)
        timing["fit_s"] = round(timing["fit_s"] + result["fit_s"], 1)
        results[name] = result
    if experts:
        model = join_experts(fitted, experts)
        p_val = model.predict(x_val.astype(np.float32), batch_size=cfg.optim.batch_size, verbose=0)[:, 1]
        w_val = loss_weights(val_kept, cfg.data)
        picked = np.clip(np.where(y_val == 1, p_val, 1 - p_val), 1e-7, 1.0)  # Keras' clip of the cross-entropy
        val_loss = float(np.sum(w_val * -np.log(picked)) / np.sum(w_val))
        val_acc = float(np.sum(w_val * ((p_val > 0.5) == y_val)) / np.sum(w_val))
        summary["experts"] = {name: {k: v for k, v in result.items() if k != "p_val"} for name, result in results.items()}
    else:
        (model,) = fitted
        val_loss, val_acc, p_val = (results[cfg.name][k] for k in ("val_loss", "val_accuracy", "p_val"))
    with atomic_path(work / "model.keras") as tmp:
        model.save(tmp)
    fingerprint = weights_sha256(model.get_weights())
    summary["result"] = {"val_loss": float(val_loss), "val_accuracy": float(val_acc), "val_auc": roc_auc(y_val, p_val),
                         "n_train": int(len(y_train)), "n_val": int(len(y_val)),
                         "optimizer_iterations": sum(r["optimizer_iterations"] for r in results.values()),
                         "weights_sha256": fingerprint, "wall_seconds": round(time.time() - started, 1),
                         "timing": timing}
    atomic_write_json(work / "config.json", summary)
    shutil.rmtree(work / "backup", ignore_errors=True)
    for folder in (work / "experts").glob("*/backup"):
        shutil.rmtree(folder, ignore_errors=True)
    kept = f"run folder {out}" if work == out else "not the chief: its files are discarded"
    print(f"{cfg.name}: best val accuracy {val_acc:.3f} (n={len(y_val)}), {kept}")
    print(f"final weights sha256: {fingerprint}")
    return out


@dataclasses.dataclass
class Tail:
    """What one tail trains or validates on: rows `rows` of the model inputs `inputs` (the views
    (V, N, ...) for training, (N, ...) for validation), with their labels and loss weights."""
    inputs: np.ndarray
    rows: np.ndarray
    y: np.ndarray
    w: np.ndarray


EXPERT_DONE = "expert.weights.h5"  # a finished tail's weights (model.experts); written last, so it marks the tail done


def epochs_done(folder: Path, epochs: int) -> int:
    """How many epochs the tail trained in `folder` has finished: all once its weights are saved
    (model.experts), else as many as its last backup holds."""
    if (folder / EXPERT_DONE).is_file():
        return epochs
    latest = tf.train.latest_checkpoint(str(folder / "backup"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def fit_tail(cfg: TrainConfig, train: Tail, val: Tail, resume_from: Path, work: Path, placement: Placement,
             global_batch: int, learning_rate: float, first_epoch: int,
             expert: bool = False) -> tuple[tf_keras.Model, dict]:
    """Train one tail of `cfg`'s model on `train`, choosing the epoch by `val`'s loss, resuming
    after `first_epoch` from the backup in `resume_from` (the tail's folder in the run folder);
    history, checkpoints and the new backups go to `work`.
    Seeded here, so every tail starts from the initial weights a run of its data alone would.
    An `expert` tail also saves its weights and result in `work` when done, and a finished one is
    read back instead of trained. Returns the whole model with the trained tail and what it
    scored (val loss, accuracy, AUC, p(fake), fit seconds)."""
    seed_everything(cfg.seed)
    model = build_model(cfg.model.input_size, cfg.model.alpha, cfg.model.weights, cfg.model.unfreeze, cfg.model.dropout,
                        grey=cfg.model.grey)
    if expert and (resume_from / EXPERT_DONE).is_file():
        model.load_weights(str(resume_from / EXPERT_DONE))
        return model, json.loads((resume_from / "result.json").read_text())
    make_folder(work / "checkpoints")
    steps = math.ceil(epoch_size(train.y, cfg.optim.real_share) / global_batch)
    paired = cfg.optim.consistency > 0
    train_ds = shard_by_data(epoch_batches(train.inputs, train.y, train.w, global_batch, cfg.seed, first_epoch,
                                           cfg.optim.epochs, paired, train.rows, cfg.optim.real_share))
    v_fit = val.inputs[val.rows]
    val_ds = tf.data.Dataset.from_tensor_slices((v_fit, val.y, val.w))
    val_ds = shard_by_data((val_ds.map(consistency.twice) if paired else val_ds).batch(global_batch))

    with placement.strategy.scope():  # the trained copy's variables live on every replica
        with train_precision(cfg.optim.precision):  # what it computes in while it trains; `model` stays float32
            replica_model = build_model(cfg.model.input_size, cfg.model.alpha, "none", cfg.model.unfreeze,
                                        cfg.model.dropout, grey=cfg.model.grey)
            replica_model.set_weights(model.get_weights())
            replica_trunk, replica_tail = split_frozen_trunk(replica_model)
            fit_model = replica_tail if cfg.optim.cache_trunk else tf_keras.Model(
                replica_model.input, replica_tail(replica_trunk(replica_model.input)), name="whole_model")
            if paired:
                fit_model = consistency.paired_model(fit_model)
        if cfg.optim.lr_schedule == "cosine":  # a function of the optimizer's step count, so a resumed run follows it too
            learning_rate = tf_keras.optimizers.schedules.CosineDecay(learning_rate, steps * cfg.optim.epochs)
        optimizer = tf_keras.optimizers.Adam(learning_rate)
        if paired:
            fit_model.compile(optimizer=optimizer, loss=consistency.paired_loss(cfg.optim.consistency),
                              weighted_metrics=[consistency.accuracy])
        else:
            fit_model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                              weighted_metrics=["accuracy"])
        optimizer.build(fit_model.trainable_variables)  # slots exist before a backup is restored into them
        keep_best = KeepBest(fit_model.get_weights(), work / "checkpoints" / "best.weights.h5")
        checkpoint = tf.train.Checkpoint(model=fit_model, optimizer=optimizer, best_loss=keep_best.best_loss,
                                         best_weights=keep_best.best_weights)
        if first_epoch:
            checkpoint.restore(tf.train.latest_checkpoint(str(resume_from / "backup"))).assert_existing_objects_matched()
            continue_history(work / "history.csv", first_epoch)
        tick = time.time()
        fit_model.fit(train_ds, validation_data=val_ds, epochs=cfg.optim.epochs, initial_epoch=first_epoch,
                      steps_per_epoch=steps, verbose=2, callbacks=[
                          keep_best, EpochDropoutSeeds(cfg.seed),
                          tf_keras.callbacks.CSVLogger(str(work / "history.csv"), append=bool(first_epoch)),
                          tf_keras.callbacks.TensorBoard(str(work / "logs"), write_graph=False),
                          EpochBackup(tf.train.CheckpointManager(checkpoint, str(work / "backup"), max_to_keep=1)),
                      ])
        fit_seconds = round(time.time() - tick, 1)
        keep_best.restore()
        val_loss, val_acc = fit_model.evaluate(val_ds, verbose=0)
        model.set_weights(replica_model.get_weights())
    _, tail = split_frozen_trunk(model)
    p_val = (tail if cfg.optim.cache_trunk else model).predict(v_fit, batch_size=cfg.optim.batch_size, verbose=0)[:, 1]
    result = {"val_loss": float(val_loss), "val_accuracy": float(val_acc), "val_auc": roc_auc(val.y, p_val),
              "n_train": int(len(train.rows)), "n_val": int(len(val.rows)),
              "optimizer_iterations": int(optimizer.iterations.numpy()), "fit_s": fit_seconds}
    if expert:
        atomic_write_json(work / "result.json", result)
        with atomic_path(work / EXPERT_DONE) as tmp:
            model.save_weights(str(tmp))
    return model, {**result, "p_val": p_val}
