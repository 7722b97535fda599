"""Folding the decision threshold into the classifier's last layer (`convert --bake_threshold`).

Why: standard clients (MediaPipe Tasks, the Task Library ImageClassifier) report the classes by
score and an app takes the top one, i.e. decides at p(fake) >= 0.5; none of them reads the
threshold in fakelens.json. The head is a Dense layer with a 2-way softmax (train/model.py), so
p(fake) = sigmoid(z_fake - z_real) and p(fake) >= t exactly when z_fake - z_real >= logit(t).
Moving logit(t)/2 from the fake bias to the real bias shifts that difference by -logit(t): the
baked model's p(fake) >= 0.5 exactly when the original's p(fake) >= t, so its top-1 class is
FakeLens' decision at t. The scores stay a monotone function of the original ones (every
ranking metric is unchanged), but they are no longer the original probabilities.
"""
from __future__ import annotations

import numpy as np

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tf_keras

from train.metrics import logit

FAKE_INDEX = 1  # the model's outputs are [p_real, p_fake] (train/model.py)


def bake_threshold(model: tf_keras.Model, threshold: float) -> tf_keras.Model:
    """A copy of `model` whose p(fake) >= 0.5 exactly when `model`'s p(fake) >= `threshold`
    (0.5 leaves the weights as they are); `model` itself is not changed."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"cannot bake threshold {threshold}: it must lie strictly between 0 and 1")
    head = model.layers[-1]
    config = head.get_config() if isinstance(head, tf_keras.layers.Dense) else {}
    if not (config.get("units") == 2 and config.get("activation") == "softmax" and config.get("use_bias")):
        raise ValueError(f"{model.name}: --bake_threshold needs a model ending in a 2-unit softmax Dense layer "
                         f"with a bias (FakeLens' head); its last layer is {head.__class__.__name__} {head.name!r}")
    baked = tf_keras.models.clone_model(model)
    baked.set_weights(model.get_weights())
    kernel, bias = baked.layers[-1].get_weights()
    shift = np.full(2, float(logit(threshold)) / 2)
    shift[FAKE_INDEX] *= -1
    baked.layers[-1].set_weights([kernel, (bias.astype(np.float64) + shift).astype(bias.dtype)])
    return baked
