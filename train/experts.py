"""Experts (`model.experts`): one trained tail per fake source behind the shared frozen trunk; a
photo is called fake when any tail calls it fake.

Why: one tail trained on every generator at once settles on what the generators share, and each
generator's own traces get less of it. On validation (docs/results.md §2, sessions 17-18) two
56-layer tails, one trained without GAN faces and one without SD 2.1, combined by the maximum of
their fake-minus-real logits, caught both generators better than one 56-layer model of the same
recipe (GAN 0.973 / SD 0.986 over two seeds, against 0.968 / 0.967 over three), and at 43 layers
better than a mean of two seeds or one model with a class per generator; session 19 adopted
them as `fakelens`.

How: tail k is trained exactly as a run on the real sources and fake source k alone would train
it (same seed, initial weights, augmented views, batch order and class/source-balanced loss),
so what a held-out run shows about one tail holds for it; the decoding, augmentation and frozen
trunk activations are computed once for all tails. `join_experts` then puts the tails side by
side behind one copy of the trunk, each head turned into its fake-minus-real logit (a Dense of
one unit), their MAXIMUM, and a fixed Dense of two units with the softmax: [-m/2, m/2] gives
p(fake) = sigmoid(m), the two-way softmax every FakeLens model and client reads. An export can
raise one tail's logit before the maximum (`convert --tail_offset`, convert/tail.py says why).
"""
from __future__ import annotations

import numpy as np

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tf_keras

from train.data import Record
from train.model import HEAD_LAYER, first_trainable

COMBINE = "any_expert"  # the MAXIMUM of the tails' logits
SEPARATOR = "__"  # a tail's layers are named "<source>__<layer>"
LOGIT = "fake_logit"  # the layer of a tail's fake-minus-real logit


def logit_layer(source: str) -> str:
    """The name of tail `source`'s fake-minus-real logit layer in a joined model."""
    return f"{source}{SEPARATOR}{LOGIT}"


def tail_sources(model: tf_keras.Model) -> list[str]:
    """The fake sources of a joined model's tails, in its order; [] for a single-tail model."""
    suffix = SEPARATOR + LOGIT
    return [layer.name[:-len(suffix)] for layer in model.layers if layer.name.endswith(suffix)]


def tail_logits_model(model: tf_keras.Model) -> tf_keras.Model:
    """`model`'s tails' fake-minus-real logits (what the maximum takes), one output per tail in
    `tail_sources` order."""
    return tf_keras.Model(model.input, [model.get_layer(logit_layer(s)).output for s in tail_sources(model)])


def expert_sources(records: list[Record]) -> list[str]:
    """The fake sources of `records`, one tail each, in sorted order; none when there are fewer
    than two (one tail for one source is the plain model)."""
    sources = sorted({r.source for r in records if r.label == "fake"})
    return sources if len(sources) > 1 else []


def expert_rows(records: list[Record], source: str) -> np.ndarray:
    """Indices of the records tail `source` trains on: every real image and the fakes of `source`."""
    return np.array([i for i, r in enumerate(records) if r.label == "real" or r.source == source], np.int64)


def _renamed_copy(layer: tf_keras.layers.Layer, prefix: str) -> tf_keras.layers.Layer:
    """A new layer like `layer` (same config and, once called, its weights) named `prefix + name`."""
    config = layer.get_config()
    config["name"] = prefix + config["name"]
    return layer.__class__.from_config(config)


def single_tail(model: tf_keras.Model, source: str) -> tf_keras.Model:
    """Tail `source` of a joined model on its own behind the trunk, p(fake) = sigmoid(its logit):
    the classifier a run on the real sources and `source`'s fakes alone trains (a tail trains
    exactly as that run would), so one experts run also holds its leave-one-generator-out runs.
    The layers are copies (with their weights): a layer shared with `model` would confuse the
    model cloning of quantisation-aware training."""
    sources = tail_sources(model)
    if source not in sources:
        raise ValueError(f"no tail {source!r}; its tails are {', '.join(sources) or 'none'}")
    others = tuple(s + SEPARATOR for s in sources if s != source)
    image = tf_keras.Input(model.input_shape[1:], name="image")
    x = image
    for layer in model.layers[1:]:  # trunk, the tails, the maximum, the head: a chain once the others are gone
        if not layer.name.startswith(others) and layer.name != COMBINE:
            copy = _renamed_copy(layer, "")
            x = copy(x)
            copy.set_weights(layer.get_weights())
    return tf_keras.Model(image, x, name=f"{model.name}_{source}")


def join_experts(models: list[tf_keras.Model], sources: list[str]) -> tf_keras.Model:
    """One classifier from the trained single-tail `models` (one per source in `sources`, sharing
    their frozen trunk): the trunk once, each tail after it with its layers named "<source>__<layer>",
    p(fake) = sigmoid(max over tails of the fake-minus-real logit)."""
    base = models[0]
    first = first_trainable(base)
    for model in models[1:]:
        same = all(np.array_equal(a, b) for la, lb in zip(base.layers[:first], model.layers[:first])
                   for a, b in zip(la.get_weights(), lb.get_weights()))
        if first_trainable(model) != first or not same:
            raise ValueError("experts must share their frozen trunk (same config, same start weights)")
    image = tf_keras.Input(base.input_shape[1:], name="image")
    trunk = image
    for layer in base.layers[1:first]:
        trunk = layer(trunk)
    logits = []
    for model, source in zip(models, sources):
        x = trunk
        for layer in model.layers[first:-1]:
            copy = _renamed_copy(layer, source + SEPARATOR)
            x = copy(x)
            copy.set_weights(layer.get_weights())
        kernel, bias = model.layers[-1].get_weights()
        margin = tf_keras.layers.Dense(1, name=logit_layer(source))
        logits.append(margin(x))
        margin.set_weights([kernel[:, 1:] - kernel[:, :1], bias[1:] - bias[:1]])
    best = tf_keras.layers.Maximum(name=COMBINE)(logits) if len(logits) > 1 else logits[0]
    head = tf_keras.layers.Dense(2, activation="softmax", trainable=False, name=HEAD_LAYER)
    outputs = head(best)
    head.set_weights([np.array([[-0.5, 0.5]], np.float32), np.zeros(2, np.float32)])
    return tf_keras.Model(image, outputs, name=f"{base.name}_experts")
