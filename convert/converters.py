"""Fresh TFLite converters of one Keras model, for all of its variants, from one small SavedModel.

Why: `TFLiteConverter.from_keras_model` writes the model as a Keras SavedModel (with a traced
function for every layer, Keras' own serialisation) to a temporary folder and then reads it back
twice in every `convert()`, with the pure-Python protobuf that tflite-support pins (< 4): for a
224 px MobileNet V1, 17 s per variant, of which the conversion proper is about 2 s (cProfile of
`python -m convert --run RUN --variants float32`). Here the model is saved once, as only what
the converter uses: its serving function (the model called with training=False, inputs and
outputs named as Keras names them) and its weights. The converted files are the same as
`from_keras_model`'s, tensor for tensor, op for op, weight for weight and signature for
signature (tests/test_convert.py); only the model type recorded in the file's conversion
metadata says "saved model" instead of "Keras".

`from_saved_model` itself reads the whole SavedModel once more only to list its signatures, so
one converter serves every variant: each `new()` hands it back with the settings it had when it
was created (a converter keeps nothing else between `convert()` calls).

Each `convert()` then reads the SavedModel twice more before converting: as a graph (its
GraphDef, which the conversion reads only for statistics and for fake-quant nodes) and as a
whole loaded object (only for its debug information). Both are the same for every variant of one
SavedModel, and no public API hands them over, so `_reads_once` keeps the first of each — the
one place FakeLens reaches into the converter's private names (TF 2.19's
`tensorflow/lite/python/lite.py`: `TFLiteSavedModelConverterV2.convert` calls
`self._load_saved_model` and the module's `_load`). Four variants: 3.5 s less of 25 s here.
"""
from __future__ import annotations

import copy
import importlib
import shutil
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator
from unittest import mock

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras

_LITE = importlib.import_module("tensorflow.lite.python.lite")  # the module whose private names _reads_once wraps


@contextmanager
def converters_of(model: tf_keras.Model) -> Iterator[Callable[[], tf.lite.TFLiteConverter]]:
    """Yields `new`: each `new()` is the TFLiteConverter of `model`, back at its default settings."""
    specs = [tf.TensorSpec(t.shape, t.dtype, name=name) for t, name in zip(model.inputs, model.input_names)]

    @tf.function(input_signature=specs)
    def serve(*inputs):
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        return dict(zip(model.output_names, outputs if isinstance(outputs, (list, tuple)) else [outputs]))

    module = tf.Module()
    # The variables `serve` reads, saved with it: those its trace captured (a QAT model's frozen
    # layers are in no weight list of its wrappers, convert/qat.py says why).
    module.weights = list(serve.get_concrete_function().variables)
    folder = tempfile.mkdtemp(prefix="fakelens_saved_model_")
    try:
        with quiet_conversion():
            tf.saved_model.save(module, folder, signatures={"serving_default": serve},
                                options=tf.saved_model.SaveOptions(save_debug_info=True))
        with _reads_once(folder) as converter:
            defaults, target_spec = dict(vars(converter)), copy.deepcopy(converter.target_spec)

            def new() -> tf.lite.TFLiteConverter:
                # Settings are assigned, not changed in place, except the target spec's sets and lists.
                vars(converter).clear()
                vars(converter).update(defaults, target_spec=copy.deepcopy(target_spec))
                return converter

            yield new
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _reads_once(folder: str) -> Iterator[tf.lite.TFLiteConverter]:
    """The converter of the SavedModel in `folder`, which reads it as a graph and as a loaded
    object once, however often it converts (while this context lasts; other SavedModels, e.g. a
    QAT model's converted inside it, are read as usual)."""
    loaded, load = {}, _LITE._load

    def load_once(saved_model_dir, tags):
        if saved_model_dir != folder:
            return load(saved_model_dir, tags)
        if "object" not in loaded:
            loaded["object"] = load(saved_model_dir, tags)
        return loaded["object"]

    with mock.patch.object(_LITE, "_load", load_once):
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        read_graph = converter._load_saved_model

        def read_graph_once(saved_model_dir, tags):
            if "graph" not in loaded:
                loaded["graph"] = read_graph(saved_model_dir, tags)
            return loaded["graph"]

        converter._load_saved_model = read_graph_once  # an instance attribute: part of every new()'s settings
        yield converter
