"""Fresh TFLite converters of one Keras model, for all of its variants, from one SavedModel.

Why: `TFLiteConverter.from_keras_model` writes the model to a temporary SavedModel and reads it
back in every `convert()`, which with the pure-Python protobuf that tflite-support pins (< 4)
takes most of an export's time (measured for a 224 px MobileNet: about 12 s to save and 7 s to
load, against 8 s for the conversion itself). Here the model is saved once, exactly as
`from_keras_model` saves it, and loaded once; each variant gets a shallow copy of that pristine,
never-run converter with a target spec of its own, so no setting passes from one variant to the
next. The converted graphs equal `from_keras_model`'s (tests/test_convert.py); only the model
type recorded in the file's conversion metadata says "saved model".
"""
from __future__ import annotations

import copy
import shutil
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras


@contextmanager
def converters_of(model: tf_keras.Model) -> Iterator[Callable[[], tf.lite.TFLiteConverter]]:
    """Yields `new`: each `new()` is a TFLiteConverter of `model` with default settings."""
    folder = tempfile.mkdtemp(prefix="fakelens_saved_model_")
    try:
        with quiet_conversion():
            tf.saved_model.save(model, folder, options=tf.saved_model.SaveOptions(save_debug_info=True))
            pristine = tf.lite.TFLiteConverter.from_saved_model(folder)

        def new() -> tf.lite.TFLiteConverter:
            converter = copy.copy(pristine)
            converter.target_spec = tf.lite.TargetSpec()
            return converter

        yield new
    finally:
        shutil.rmtree(folder, ignore_errors=True)
