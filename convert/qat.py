"""Quantisation-aware training (QAT): fine-tune a run's model under simulated int8 before converting.

Why: post-training int8 (the `int8` variant) rounds weights and activations the model never saw
rounded. ELA models lose most, because their signal sits in the lowest input levels
(docs/results.md §4). QAT puts tfmot's fake quantisation (its default 8-bit scheme, which
models TFLite's int8 kernels: per-channel symmetric weights, per-tensor activation ranges) into
the model and trains a few epochs on the run's own training split, so the weights learn to live
with the rounding. The converter then takes the ranges learned here.

What it learns: to give the float model's scores (its softmax on each training image is the
target, cross-entropy to it is the loss; for experts each tail's logit, `logit_loss`), not the
labels. QAT is here to undo quantisation damage; refitting the labels would be more training
instead, and on these small, noisy runs (val accuracy jumps by several points from epoch to
epoch in training) it drifts away from the checkpoint training chose. The validation split is
scored both ways: decision agreement with the float model and accuracy against the labels.
`label_weight` > 0 mixes the labels in (that share of a one-hot label in the targets, the rest
the float scores; for experts that share of the loss is the label's cross-entropy; each image
weighted as in the training loss): for a quantised model that follows float32's ranking but
loses fakes near the threshold, the labels say which side of it they belong on.

On which images (`augment`): the plain training images by default; or, for a run trained with
augmentation, one of the run's own augmented views per epoch (the views training made, same
seeds), with the float model's scores on that view as targets. Distilled on clean images only,
the quantised model is fitted where the float model is surest; the photos that decide its
threshold and its probes (re-saved, rescaled, greyscale) are the augmented kind.

How the model is prepared (`quantize_aware`):
- tfmot has no quantisation rule for the in-graph `Rescaling` ('to_unit_range') or for the
  experts' `Maximum` (train/experts.py); neither has weights, so `OutputRangeConfig` only quantises
  their output. TFLite turns the rescaling into MUL + ADD, whose intermediate gets its range from
  the calibration images the converter is given anyway.
- Frozen layers stay frozen: tfmot's wrapper (QuantizeWrapperV2.build) copies the wrapped layer's
  weights into its own private `_trainable_weights` even when the layer is frozen, so a frozen
  layer's wrapper gets that list emptied. This is the one place FakeLens writes tfmot internals,
  because nothing public does it: tfmot has no option for frozen layers, and the public switch,
  `wrapper.trainable = False`, does not give the same model (with MobileNet at alpha 0.25 and 12
  layers unfrozen it leaves 37 trainable weights where the frozen model has 6, and changes the
  weight list).
- Batch normalisation stays in inference mode, as in training (`split_frozen_trunk`); Keras'
  fit only allows that for a frozen BN layer, so the unfrozen BN layers' scale and offset are
  kept too. QAT fine-tunes the unfrozen convolutions and the Dense head.
- Activation ranges start where post-training int8 ends (`set_activation_ranges`).
"""
from __future__ import annotations

import time

import numpy as np

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
# The input's QuantizeLayer is not in tfmot's public API; it is needed to tell it from the wrappers.
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

from convert.variants import QAT_EPOCHS, QAT_LEARNING_RATE
from train.configs import DataConfig, TrainConfig
from train.data import DataError, Record, select
from train.experts import expert_rows, logit_layer, tail_logits_model, tail_sources
from train.run import ViewInputs, loss_weights
from train.run_folder import seed_everything

PIXEL_RANGE = (0.0, 255.0)  # the input range, so the uint8 input takes raw pixels (scale 1, zero point 0)
# activation ranges set_activation_ranges knows how to start: a layer's output (a linear Dense's is "post_activation"),
# or a Dense's product before its softmax
RANGE_KINDS = ("output", "post_activation", "pre_activation")
qkeras = tfmot.quantization.keras


OUTPUT_ONLY = (tf_keras.layers.Rescaling, tf_keras.layers.Maximum)  # layers without weights or activation


class OutputRangeConfig(qkeras.QuantizeConfig):
    """Quantise only the output of a layer that has no weights or activation (OUTPUT_ONLY)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [qkeras.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                         narrow_range=False)]

    def get_config(self):
        return {}


def quantize_aware(model: tf_keras.Model) -> tf_keras.Model:
    """A copy of `model` with fake quantisation on every layer; same trainable weights, minus BN's."""
    def annotate(layer):
        config = OutputRangeConfig() if isinstance(layer, OUTPUT_ONLY) else None
        return qkeras.quantize_annotate_layer(layer, config)

    with qkeras.quantize_scope({"OutputRangeConfig": OutputRangeConfig}):
        qat = qkeras.quantize_apply(tf_keras.models.clone_model(model, clone_function=annotate))
    for layer in qat.layers:
        if isinstance(layer, qkeras.QuantizeWrapperV2):
            inner = layer.layer
            if isinstance(inner, tf_keras.layers.BatchNormalization):
                inner.trainable = False
            if not inner.trainable:  # no public way: see "Frozen layers stay frozen" above
                layer._trainable_weights = []
    return qat


def _range_variables(layer) -> dict[str, tuple]:
    """{kind: (min variable, max variable)} of a quantised layer's activation ranges; weight ranges
    (kernel_min/max) are left out: tfmot recomputes them from the weights at every training step."""
    found: dict[str, dict[str, object]] = {}
    for var in layer.non_trainable_weights:
        name = var.name.split("/")[-1].split(":")[0]
        kind, _, end = name.rpartition("_")
        if end in ("min", "max") and not kind.endswith("kernel"):
            found.setdefault(kind, {})[end] = var
    return {kind: (v["min"], v["max"]) for kind, v in found.items()}


def set_activation_ranges(qat: tf_keras.Model, model: tf_keras.Model, images: np.ndarray, batch_size: int = 8) -> None:
    """Start every activation range of `qat` at the min..max of the same tensor of the float
    `model` on `images` (the int8 calibration images), the input's at 0..255.

    Why: tfmot starts each range at [-6, 6] and moves it by an EMA with decay 0.999, which the few
    hundred steps of a short fine-tuning barely move (after 50 steps, 95% of the start remains):
    the first convolution would see its [-1, 1] input through a [-6, 6] grid, a sixth of the input
    levels. Started from data, QAT begins exactly where post-training int8 is and only improves.
    """
    probes, targets = [], []  # float tensors to measure; (min var, max var, probe index, to pre-activation)
    for layer in qat.layers:
        for kind, (lo, hi) in _range_variables(layer).items():
            if isinstance(layer, QuantizeLayer):
                lo.assign(PIXEL_RANGE[0])
                hi.assign(PIXEL_RANGE[1])
                continue
            if kind not in RANGE_KINDS:
                raise RuntimeError(f"{layer.name}: no rule to start its {kind!r} range — qat.py knows {RANGE_KINDS}")
            source = model.get_layer(layer.layer.name)
            probes.append(source.input if kind == "pre_activation" else source.output)
            targets.append((lo, hi, len(probes) - 1, source if kind == "pre_activation" else None))
    probe = tf_keras.Model(model.input, probes)
    low = np.full(len(targets), np.inf)
    high = np.full(len(targets), -np.inf)
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start:start + batch_size].astype(np.float32), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, (_, _, index, dense) in enumerate(targets):
            value = outputs[index].numpy()
            if dense is not None:  # the Dense layer's output before its activation
                value = value @ dense.kernel.numpy() + dense.bias.numpy()
            low[i], high[i] = min(low[i], value.min()), max(high[i], value.max())
    for (lo, hi, *_), a, b in zip(targets, low, high):
        lo.assign(min(a, 0.0))  # int8 ranges always hold 0 exactly
        hi.assign(max(b, 0.0))


def with_labels(scores: np.ndarray, records: list[Record], label_weight: float) -> np.ndarray:
    """QAT's targets: the float model's scores, with `label_weight` of each image's one-hot label mixed in."""
    labels = np.eye(2, dtype=scores.dtype)[[r.y for r in records]]
    return (1.0 - label_weight) * scores + label_weight * labels


def logit_loss(label_weight: float):
    """An experts tail's QAT loss per image, from its target columns (float logit, label) and its
    quantised logit z: `label_weight` × the label's cross-entropy on sigmoid(z) + the rest × half
    the squared distance of z from the float logit.

    Why logits: fitted to the float tail's probability by cross-entropy (the single-tail QAT),
    whose gradient is a difference of probabilities and fades wherever both saturate, the int8
    tails' logits sat about one unit above float32's on validation, with about one unit of noise
    (median |Δ| 0.96 where float32's logit is below −5, among the reals, where never-trained
    generators' faces sit). Fitted by distance, that median is 0.36 and the shift is gone; on the
    test split the SD 1.5 AUC gap to float32 fell from −0.136 to −0.057 (docs/results.md §2–§3,
    session 24). The maximum of the tails compares their logits, so each must keep float32's."""
    def loss(target, logit):
        float_logit, label = target[:, :1], target[:, 1:]
        labelled = tf.nn.sigmoid_cross_entropy_with_logits(label, logit)
        fitted = 0.5 * tf.square(logit - float_logit)
        return tf.reduce_mean(label_weight * labelled + (1.0 - label_weight) * fitted, -1)
    return loss


class Distillation:
    """What QAT fits and towards what: the quantised model's 2-way softmax towards the float
    model's (a single-tail model); or, for experts (train/experts.py), each tail's fake-minus-real
    logit towards that tail's float logit (`logit_loss`), on every real image and its own source's
    fakes only — the QAT each tail's own run would get, in the one joined graph (QAT of the joined
    score moved SD 2.1 decisions on validation; docs/results.md §2, session 19)."""

    def __init__(self, model: tf_keras.Model, qat: tf_keras.Model, data: DataConfig, label_weight: float,
                 learning_rate: float):
        self.data, self.label_weight = data, label_weight
        self.sources = tail_sources(model)
        optimizer = tf_keras.optimizers.Adam(learning_rate)
        if not self.sources:
            self.reference, self.fit_model = model, qat
            qat.compile(optimizer=optimizer, loss="categorical_crossentropy",
                        metrics=[tf_keras.metrics.CategoricalAccuracy(name="agreement")])  # argmax agrees with target
            return
        self.reference = tail_logits_model(model)
        self.fit_model = tf_keras.Model(qat.input, [qat.get_layer(f"quant_{logit_layer(s)}").output
                                                    for s in self.sources])
        self.fit_model.compile(optimizer=optimizer, loss=logit_loss(label_weight), weighted_metrics=[])

    def targets(self, x: np.ndarray, records: list[Record], batch_size: int) -> tuple:
        """(targets, sample weights or None) for images `x` of `records`: for experts, one of each
        per tail, the targets as (float logit, label) columns."""
        scores = self.reference.predict(x, batch_size=batch_size, verbose=0)
        if not self.sources:
            return (with_labels(scores, records, self.label_weight),
                    loss_weights(records, self.data) if self.label_weight else None)
        labels = np.array([[r.y] for r in records], np.float32)
        logits = scores if len(self.sources) > 1 else [scores]  # Keras returns one output as an array, not a list
        targets, weights = [], []
        for source, logit in zip(self.sources, logits):
            rows = expert_rows(records, source)
            w = np.zeros(len(records), np.float32)  # another source's fakes are no business of this tail
            w[rows] = loss_weights([records[i] for i in rows], self.data) if self.label_weight else 1.0
            targets.append(np.concatenate([logit, labels], 1).astype(np.float32))
            weights.append(w)
        return targets, weights


def require_images(cfg: TrainConfig, n_train: int, n_val: int) -> None:
    """A one-line DataError, before any work, when the run's train or val images are missing."""
    if not n_train or not n_val:
        raise DataError(f"QAT needs the training run's train and val images of {', '.join(cfg.data.sources)}; "
                        f"found {n_train} and {n_val} — pass the run's dataset with --data")


def fine_tune_quantized(model: tf_keras.Model, cfg: TrainConfig, records: list[Record], calibration: np.ndarray,
                        epochs: int = QAT_EPOCHS, learning_rate: float = QAT_LEARNING_RATE,
                        augment: bool = False, label_weight: float = 0.0) -> tuple[tf_keras.Model, dict]:
    """The QAT copy of the run's `model`, fine-tuned for `epochs` on the run's training split
    (same sources, cap and preprocessing as training; with `augment`, epoch e on the run's
    augmented view e mod views) to give `model`'s scores (mixed with the labels at `label_weight`),
    and validated on its val split.

    Returns the model, ready for the int8 converter, and a summary for conversion.json. Seeded
    with the run's seed and deterministic ops; the last epoch's weights are kept.
    """
    if epochs < 1:
        raise ValueError(f"--qat_epochs must be at least 1, got {epochs}")
    if learning_rate <= 0:
        raise ValueError(f"--qat_learning_rate must be positive, got {learning_rate}")
    if not 0.0 <= label_weight <= 1.0:
        raise ValueError(f"--qat_label_weight must be in [0, 1], got {label_weight}")
    started = time.time()
    seed_everything(cfg.seed)
    train_inputs = ViewInputs(cfg, select(records, cfg.data.sources, ["train"], cfg.data.max_per_source),
                              "QAT train images", augment=augment, needed=epochs)
    if augment and train_inputs.count == 1:
        raise ValueError(f"--qat_augment needs a run trained with augmentation; {cfg.name}'s has none")
    x_val, val_kept, _ = ViewInputs(cfg, select(records, cfg.data.sources, ["val"], cfg.data.max_per_source),
                                    "QAT val images", augment=False).view(0)
    y_val = np.array([r.y for r in val_kept], np.int64)
    require_images(cfg, len(train_inputs.records), len(x_val))
    x_val = x_val.astype(np.float32)
    target_val = model.predict(x_val, batch_size=cfg.optim.batch_size, verbose=0)
    qat = quantize_aware(model)
    set_activation_ranges(qat, model, calibration)
    distill = Distillation(model, qat, cfg.data, label_weight, learning_rate)
    val_targets, val_weights = distill.targets(x_val, val_kept, cfg.optim.batch_size)
    fit_val = (x_val, val_targets) if val_weights is None else (x_val, val_targets, val_weights)
    images = "one augmented view per epoch" if augment else "the plain images"
    # Augmented: one fit per epoch, each on its view. Plain: one fit of every epoch, as before the option.
    spans = [(e, e + 1) for e in range(epochs)] if augment else [(0, epochs)]
    towards = ("each tail's float logit on every real image and its own source's fakes" if distill.sources
               else "the float model's scores") + (f" mixed with the labels at {label_weight:g}" if label_weight else "")
    n_train = 0
    for first, end in spans:
        x_train, kept, _ = train_inputs.view(first % train_inputs.count)
        n_train = len(kept)
        require_images(cfg, n_train, len(x_val))
        x_train = x_train.astype(np.float32)
        target, weights = distill.targets(x_train, kept, cfg.optim.batch_size)
        if not first:
            print(f"QAT: {epochs} epoch(s) at learning rate {learning_rate:g} on {n_train} training images "
                  f"({images}), towards {towards}")
        distill.fit_model.fit(x_train, target, sample_weight=weights, validation_data=fit_val, initial_epoch=first,
                              epochs=end, batch_size=cfg.optim.batch_size, shuffle=True, verbose=2)
    decided = qat.predict(x_val, batch_size=cfg.optim.batch_size, verbose=0).argmax(1)
    summary = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": cfg.optim.batch_size,
               "augmented_views": augment, "label_weight": label_weight, "n_train": int(n_train),
               "n_val": int(len(y_val)),
               "val_agreement": float(np.mean(decided == target_val.argmax(1))),
               "val_accuracy": float(np.mean(decided == y_val)),
               "float_val_accuracy": float(np.mean(target_val.argmax(1) == y_val)),
               "wall_seconds": round(time.time() - started, 1)}
    print(f"QAT: val accuracy {summary['val_accuracy']:.3f} (float model {summary['float_val_accuracy']:.3f}), "
          f"agreement with the float model {summary['val_agreement']:.3f}, n={len(y_val)}")
    return qat, summary
