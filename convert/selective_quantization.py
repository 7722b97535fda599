"""Selective quantisation: full-integer int8 of a model except its in-graph ELA, which must stay
float32 to stay exact (convert --ela_in_graph, variant int8)."""
from __future__ import annotations

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras

from convert.ela_layer import ElaLayer


def ela_tensor_names(tflite_model: bytes, model: tf_keras.Model) -> list[str]:
    """Names of the tensors `model`'s ElaLayers produce in its (unquantised) .tflite."""
    from ai_edge_litert.interpreter import Interpreter
    scopes = [layer.name for layer in model.submodules if isinstance(layer, ElaLayer)]
    names = [t["name"] for t in Interpreter(model_content=tflite_model).get_tensor_details()]
    return [n for n in names
            if any(part.startswith(f"{s}/") or f"/{s}/" in part for part in n.split(";") for s in scopes)]


def quantize_keeping_ela_float(model: tf_keras.Model, representative_dataset,
                               converter: tf.lite.TFLiteConverter) -> bytes:
    """Full-integer quantisation of everything in `model` except its ElaLayers.

    A plain full-integer conversion (Optimize.DEFAULT + representative dataset) converts, but it
    quantises the ELA's convolutions and additions to int8 too, which destroys the map. Here the
    model is calibrated as usual and then quantised by the same MLIR quantiser the converter runs
    for the plain int8 export, with the ELA's tensors deny-listed (selective quantisation, as
    tf.lite.experimental.QuantizationDebugger does it): the ELA stays float32 and exact, what
    follows it becomes int8 behind one QUANTIZE op, and the final softmax stays float32 with a
    float32 output, like the plain int8 export's (convert/export.py, integer_with_float_softmax).
    Give the Keras model a uint8 input (tf_keras.Input(..., dtype="uint8")), which stays uint8.
    `representative_dataset` yields lists of input arrays, as for TFLiteConverter; `converter` is a
    fresh converter of `model` (convert/converters.py).
    """
    # The converter's own internals (the debugger uses the same two): calibrate only, then quantise.
    from tensorflow.lite.python.convert import mlir_quantize
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    with quiet_conversion():
        calibrated = converter.convert()
        return mlir_quantize(calibrated, output_data_type=tf.float32, denylisted_ops=["SOFTMAX"],
                             denylisted_nodes=ela_tensor_names(calibrated, model))
