"""The detector: Keras MobileNet V1 (ImageNet init) + global pooling, dropout and a 2-way softmax.

The model takes RGB pixel values 0..255 (float) and rescales them itself to MobileNet's
[-1, 1], so the exported .tflite needs no normalisation on the phone and its int8 variant
takes uint8 pixels directly.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
from ela.libjpeg import LUMA
import numpy as np
import tf_keras


class WeightsError(RuntimeError):
    """ImageNet weights could not be found or fetched; the message says where to put them."""


FEATURES_LAYER = "pool"  # the pooled MobileNet features, before dropout and the 2-way head
HEAD_LAYER = "real_fake"  # the 2-way softmax every FakeLens classifier ends in
GREY_LAYER = "to_grey"  # with grey=True: luma in all three channels, before MobileNet


def keras_weights_dir() -> Path:
    """Where Keras caches downloaded weights (read at call time: it follows $HOME)."""
    return Path.home() / ".keras" / "models"


def imagenet_weights_file(alpha: float, input_size: int) -> str:
    """The file name Keras downloads and caches for MobileNet V1 without top."""
    alpha_text = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}.get(alpha)
    if alpha_text is None:
        raise WeightsError(f"no ImageNet MobileNet V1 weights exist for alpha={alpha}; use 0.25, 0.5, 0.75 or 1.0, "
                           f"or --weights none")
    size = input_size if input_size in (128, 160, 192, 224) else 224
    return f"mobilenet_{alpha_text}_{size}_tf_no_top.h5"


def _mobilenet(input_tensor, alpha: float, keras_weights: str | None, input_size: int) -> tf_keras.Model:
    """Keras' MobileNet V1 without top on `input_tensor`, its failures to find or read the
    weights turned into one-line WeightsErrors that say what to do."""
    try:
        return tf_keras.applications.MobileNet(input_tensor=input_tensor, include_top=False, alpha=alpha,
                                               weights=keras_weights)
    except Exception as err:  # Keras raises a bare Exception when the download fails
        if keras_weights is None:
            raise
        file = keras_weights_dir() / imagenet_weights_file(alpha, input_size) if keras_weights == "imagenet" \
            else Path(keras_weights)
        if "URL fetch failure" in str(err):
            raise WeightsError(f"ImageNet weights {file.name} are not in {file.parent} and could not be "
                               f"downloaded (offline?) — copy the file there (e.g. from ../shared/weights/) "
                               f"or pass --weights PATH") from None
        if isinstance(err, (OSError, ValueError)) and file.is_file():  # h5py cannot open it, or shapes differ
            raise WeightsError(f"{file}: cannot be loaded as MobileNet V1 alpha={alpha} no-top weights "
                               f"({' '.join(str(err).split())[:200]}) — delete or replace the file, "
                               f"or pass --weights none") from None
        raise


def build_model(input_size: int = 224, alpha: float = 1.0, weights: str = "imagenet",
                unfreeze: int = 10, dropout: float = 0.0, grey: bool = False) -> tf_keras.Model:
    """MobileNet V1 classifier for (None, input_size, input_size, 3) float pixels 0..255 →
    (None, 2) softmax [p_real, p_fake].

    weights: "imagenet" (Keras' own download/cache path), "none" (random init) or a path to a
    no-top .h5 weights file. The last `unfreeze` layers of MobileNet are trainable, the rest
    frozen (frozen batch-norm layers run in inference mode); the head is always trainable.

    grey: MobileNet sees the image's luma in all three channels (a fixed 1×1 convolution), so
    colour cannot separate the classes and a greyscale copy of a photo gets the photo's score:
    invariance by construction where augmentation only makes it likely.
    """
    inputs = tf_keras.Input((input_size, input_size, 3), name="image")
    scaled = tf_keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    if grey:  # after the rescaling, which commutes with it: the luma weights sum to 1
        to_grey = tf_keras.layers.Conv2D(3, 1, use_bias=False, trainable=False, name=GREY_LAYER)
        scaled = to_grey(scaled)
        to_grey.set_weights([np.tile(np.array(LUMA, np.float32)[None, None, :, None], (1, 1, 1, 3))])
    keras_weights = None if weights in ("none", "", None) else weights
    if keras_weights not in (None, "imagenet") and not Path(keras_weights).is_file():
        raise WeightsError(f"{keras_weights}: weights file not found — pass an existing .h5 path, 'imagenet' or 'none'")
    if keras_weights == "imagenet":
        imagenet_weights_file(alpha, input_size)  # validates alpha before Keras tries to fetch
    if grey:  # Keras loads weights by layer order, and the grey layer has one of its own: copy them by name
        base = _mobilenet(scaled, alpha, None, input_size)
        if keras_weights is not None:
            pretrained = _mobilenet(tf_keras.Input((input_size, input_size, 3)), alpha, keras_weights, input_size)
            for layer in pretrained.layers:
                if layer.weights:
                    base.get_layer(layer.name).set_weights(layer.get_weights())
    else:
        base = _mobilenet(scaled, alpha, keras_weights, input_size)
    mobilenet_layers = base.layers[3 if grey else 2:]  # after the input, the rescaling and the grey layers
    if unfreeze > len(mobilenet_layers):
        raise ValueError(f"unfreeze={unfreeze} exceeds MobileNet's {len(mobilenet_layers)} layers")
    for i, layer in enumerate(mobilenet_layers):
        layer.trainable = i >= len(mobilenet_layers) - unfreeze
    # The head computes in float32 under any precision (train_precision): the mean, the dropout masks and the
    # softmax the loss reads stay exact
    x = tf_keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER, dtype="float32")(base.output)
    # force_generator: the masks come from a tf.random.Generator, which train.run resets per epoch
    # (only with dropout: creating one draws a seed, which would change every other initial weight)
    x = tf_keras.layers.Dropout(dropout, force_generator=dropout > 0, name="dropout", dtype="float32")(x)
    outputs = tf_keras.layers.Dense(2, activation="softmax", name=HEAD_LAYER, dtype="float32")(x)
    return tf_keras.Model(inputs, outputs, name="fakelens_mobilenet_v1")


@contextlib.contextmanager
def train_precision(policy: str):
    """Models built inside compute in `policy` (a Keras mixed-precision policy: "float32" or
    "mixed_bfloat16"), their variables float32 either way, so their weights load into a float32
    model as they are. The global policy is restored on leaving, whatever happens inside: it is
    process-wide, and conversion, evaluation and export must build float32 models."""
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def mobilenet_trainable_count(model: tf_keras.Model) -> int:
    """How many MobileNet layers (head excluded) are trainable."""
    head = {FEATURES_LAYER, "dropout", HEAD_LAYER, "image", "to_unit_range", GREY_LAYER}
    return sum(1 for layer in model.layers if layer.name not in head and layer.trainable)


def first_trainable(model: tf_keras.Model) -> int:
    """The index in `model.layers` of the first trainable layer (after the input and the rescaling):
    where the frozen trunk ends."""
    layers = model.layers
    return next(i for i in range(2, len(layers)) if layers[i].trainable)


def split_frozen_trunk(model: tf_keras.Model) -> tuple[tf_keras.Model, tf_keras.Model]:
    """Split the chain model at its first trainable layer into (trunk, tail), sharing layers.

    The trunk is frozen, so its output for an image never changes during training: it can be
    computed once per image and the tail trained on those activations, which gives the same
    training as the whole model (no augmentation) at a fraction of the cost. Training the tail
    trains the shared layers of `model`.
    """
    layers = model.layers
    first = first_trainable(model)
    trunk = tf_keras.Model(model.input, layers[first - 1].output, name="frozen_trunk")
    tail_input = tf_keras.Input(trunk.output_shape[1:], name="trunk_features")
    x = tail_input
    for layer in layers[first:]:
        x = layer(x, training=False) if isinstance(layer, tf_keras.layers.BatchNormalization) else layer(x)
    return trunk, tf_keras.Model(tail_input, x, name="trainable_tail")
