"""Selective quantisation: int8 of everything in a model except what must stay float32 — the
final softmax of every integer export, and an in-graph ELA, which must stay float32 to stay exact
(convert --ela_in_graph, variant int8).

The model is calibrated as usual and then quantised by the same MLIR quantiser the converter
runs, with those ops and tensors deny-listed (as tf.lite.experimental.QuantizationDebugger does
it; the converter's own internals, which the debugger uses too: calibrate only, then quantise).
"""
from __future__ import annotations

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras

from convert.ela_layer import ElaLayer
from convert.variants import INTEGER_IO_DTYPE


def integer_with_float_softmax(converter: tf.lite.TFLiteConverter, denylisted_nodes=None) -> bytes:
    """`converter`'s model (its representative_dataset set) in int8 with a uint8 input, but for
    the final 2-way softmax, which reads the dequantised int8 logits and writes float32 p(fake),
    and for the tensors named in `denylisted_nodes(calibrated model)`, which stay float32.

    Why the softmax: an int8 softmax writes 256 levels (1/256 apart), so every confident verdict
    is exactly 0.000 or 1.000. Images of a generator a model never saw mostly score below 1/256:
    an int8 export gave 70 held-out GAN validation faces 11 distinct scores (float32: 70), and
    their ROC AUC against the reals fell from 0.758 to 0.528. The softmax of two numbers is
    negligible work, and the standard clients read float32 scores as they are.
    A QAT model (int8_qat) keeps its learned ranges (the same int8 scales as its plain
    full-integer conversion, checked on the tiny run), but its graph is quantised during
    conversion, before the deny list applies: it comes out with an int8 softmax followed by the
    output's DEQUANTIZE, which `dequantize_before_softmax` turns the other way round.
    """
    from tensorflow.lite.python.convert import mlir_quantize
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.as_dtype(INTEGER_IO_DTYPE)
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    with quiet_conversion():
        calibrated = converter.convert()
        quantized = mlir_quantize(calibrated, input_data_type=tf.as_dtype(INTEGER_IO_DTYPE),
                                  output_data_type=tf.float32, denylisted_ops=["SOFTMAX"],
                                  denylisted_nodes=denylisted_nodes(calibrated) if denylisted_nodes else None)
    return dequantize_before_softmax(quantized)


def dequantize_before_softmax(tflite_model: bytes) -> bytes:
    """`tflite_model` with a final int8 SOFTMAX → DEQUANTIZE turned into DEQUANTIZE → float32 SOFTMAX;
    any other model unchanged.

    The output's DEQUANTIZE then reads the int8 logits and the softmax runs on their float values,
    so the scores keep their ranking below 1/256, as the deny list gives every other int8 export.
    The int8 softmax's output tensor becomes the dequantised logits; the output tensor, and with
    it the signature, stays the same. Every op before the softmax is untouched.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python.schema_util import get_builtin_code_from_operator_code
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_model))
    graph = model.subgraphs[0]
    if len(graph.operators) < 2:
        return tflite_model
    softmax, dequantize = graph.operators[-2:]
    codes = [get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex]) for op in (softmax, dequantize)]
    if codes != [schema.BuiltinOperator.SOFTMAX, schema.BuiltinOperator.DEQUANTIZE] \
            or dequantize.inputs[0] != softmax.outputs[0] or list(graph.outputs) != [dequantize.outputs[0]]:
        return tflite_model
    int8_logits, between, output = softmax.inputs[0], softmax.outputs[0], dequantize.outputs[0]
    logits = graph.tensors[between]
    logits.type, logits.quantization = schema.TensorType.FLOAT32, None
    logits.name = graph.tensors[int8_logits].name + b"/dequantized"
    dequantize.inputs, dequantize.outputs = [int8_logits], [between]
    softmax.inputs, softmax.outputs = [between], [output]
    graph.operators[-2:] = [dequantize, softmax]
    model.operatorCodes[softmax.opcodeIndex].version = 1  # the float32 kernel's version
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def ela_tensor_names(tflite_model: bytes, model: tf_keras.Model) -> list[str]:
    """Names of the tensors `model`'s ElaLayers produce in its (unquantised) .tflite."""
    from ai_edge_litert.interpreter import Interpreter
    scopes = [layer.name for layer in model.submodules if isinstance(layer, ElaLayer)]
    names = [t["name"] for t in Interpreter(model_content=tflite_model).get_tensor_details()]
    return [n for n in names
            if any(part.startswith(f"{s}/") or f"/{s}/" in part for part in n.split(";") for s in scopes)]


def quantize_keeping_ela_float(model: tf_keras.Model, representative_dataset,
                               converter: tf.lite.TFLiteConverter) -> bytes:
    """int8 of everything in `model` except its ElaLayers and its final softmax.

    A plain full-integer conversion (Optimize.DEFAULT + representative dataset) converts, but it
    quantises the ELA's convolutions and additions to int8 too, which destroys the map. Here the
    ELA's tensors are deny-listed: the ELA stays float32 and exact, what follows it becomes int8
    behind one QUANTIZE op, and the outputs are float32 like the plain int8 export's.
    Give the Keras model a uint8 input (tf_keras.Input(..., dtype="uint8")), which stays uint8.
    `representative_dataset` yields lists of input arrays, as for TFLiteConverter; `converter` is a
    fresh converter of `model` (convert/converters.py).
    """
    converter.representative_dataset = representative_dataset
    return integer_with_float_softmax(converter, lambda calibrated: ela_tensor_names(calibrated, model))
