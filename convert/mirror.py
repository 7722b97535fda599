"""Mirror averaging (`convert --mirror_average`): a score that cannot change when the photo is
mirrored.

Why: whether a face is real does not depend on its left and right, yet a trained CNN's score
does, a little, and for images near the threshold a mirrored copy can get the other decision
(the benchmark's `flip` probe). Training on random flips narrows that gap but cannot close it.
The exported model here runs the classifier on the image and on its mirror image, as one batch
of two, and gives the head both pooled feature vectors side by side, with its weights halved
for each: the mean of the two logits, f(x) = f(mirror(x)) exactly, by construction, for the
cost of a second forward pass. The average is the head's own matrix product, not a separate
mean: in int8 a MEAN op rounds differently between TFLite versions (MediaPipe's, the Task
Library's and ai-edge-litert's disagreed by 0.01 in p(fake)), while reversing, reshaping and
transposing only move int8 values and the fully connected layer is the plain export's. The
softmax stays the last op, so the int8 export keeps its float tail
(convert/selective_quantization.py) unchanged.
"""
from __future__ import annotations

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import numpy as np
import tensorflow as tf
import tf_keras

from train.model import FEATURES_LAYER


def with_mirror_average(model: tf_keras.Model) -> tf_keras.Model:
    """`model` with its score averaged over the image and its left-right mirror image (as logits)."""
    try:
        features = tf_keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    except ValueError:
        raise ValueError(f"{model.name}: --mirror_average needs FakeLens' single-tail classifier (a "
                         f"{FEATURES_LAYER!r} layer before the head); this model has none (experts have one per "
                         f"tail: export them without --mirror_average)") from None
    head = model.layers[-1]
    image = tf_keras.Input(model.input_shape[1:], name="image", dtype=model.input.dtype)
    both = tf.concat([image, tf.reverse(image, axis=[2])], axis=0)  # (2N, H, W, C): one batch, one set of weights
    pooled = features(both)
    width = pooled.shape[-1]
    side_by_side = tf.reshape(tf.transpose(tf.reshape(pooled, (2, -1, width)), (1, 0, 2)), (-1, 2 * width))
    pair_head = tf_keras.layers.Dense(head.units, activation=head.activation, name=head.name)
    outputs = pair_head(side_by_side)  # (N, 2C) @ [W/2; W/2] + b = the mean of the image's and the mirror's logits
    kernel, bias = head.get_weights()
    pair_head.set_weights([np.concatenate([kernel, kernel]) / 2, bias])
    return tf_keras.Model(image, outputs, name=f"{model.name}_mirror_average")
