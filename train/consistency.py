"""Training on pairs of augmented views, with a loss that asks both to get the same verdict.

Augmentation shows the model re-saved, re-scaled, cropped and greyscale copies of its training
images, but each copy on its own. Nothing in the loss says that two copies of one photo should
score alike, and the invariance probes (benchmark.invariance) find exactly that: the decisions
that flip are the ones near the threshold. With `optim.consistency` = λ > 0, every training step
sees each image of its batch in two views. The loss per image is the mean cross-entropy of the
two views plus λ × the Jensen–Shannon divergence of their [p_real, p_fake]. JS is bounded
(≤ ln 2) and largest where the two scores straddle the middle, so it pulls hardest on the
disagreements that flip a verdict. It hardly acts on two confident scores of the same sign.

The pair is the trained part of the model applied to each view (`paired_model`, which shares its
layers), so training it trains the model that is exported; validation feeds each image twice,
which makes the consistency term 0 and the validation loss the plain cross-entropy.
"""
from __future__ import annotations

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tf_keras

EPS = 1e-7  # keeps the logarithms finite for saturated softmax outputs


def paired_model(tail: tf_keras.Model) -> tf_keras.Model:
    """(B, 2, ...) two views of each image → (B, 2, 2) `tail`'s softmax for each view."""
    pair = tf_keras.Input((2,) + tuple(tail.input_shape[1:]), name="two_views")
    return tf_keras.Model(pair, tf_keras.layers.TimeDistributed(tail, name="each_view")(pair), name="paired")


def js_divergence(p: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
    """Jensen–Shannon divergence (nats) between class distributions p and q (..., classes)."""
    p, q = tf.clip_by_value(p, EPS, 1.0), tf.clip_by_value(q, EPS, 1.0)
    m = (p + q) / 2
    return 0.5 * tf.reduce_sum(p * tf.math.log(p / m) + q * tf.math.log(q / m), axis=-1)


def paired_loss(weight: float):
    """The loss of `paired_model`'s output: per image, the two views' mean cross-entropy +
    `weight` × their JS divergence (Keras applies the sample weights to it)."""
    def loss(y_true, y_pred):
        y = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        ce = tf_keras.losses.sparse_categorical_crossentropy
        mean_ce = (ce(y, y_pred[:, 0]) + ce(y, y_pred[:, 1])) / 2
        return mean_ce + weight * js_divergence(y_pred[:, 0], y_pred[:, 1])
    return loss


def accuracy(y_true, y_pred):
    """Accuracy of the two views' mean score (named as the unpaired metric, so history.csv has
    the same columns either way)."""
    y = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    return tf.cast(tf.equal(tf.argmax(tf.reduce_mean(y_pred, axis=1), axis=-1), y), tf.float32)


def twice(x, y, w):
    """A validation element as a pair of identical views."""
    return tf.stack([x, x]), y, w
