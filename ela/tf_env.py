"""TensorFlow, loaded once per process with FakeLens' defaults and without its start-up noise.

Every module that uses TensorFlow (or tf_keras, tfmot, tflite-support) imports this module
before them (`from ela import tf_env`); it lives in the first stage so that every later one can.
`ela`'s own modules never import it, so image preprocessing and `--help` stay TensorFlow-free.

Defaults, set only where the environment does not already say otherwise:
  TF_USE_LEGACY_KERAS=1   tf_keras (Keras 2), which the TFLite converter and tfmot work with;
  TF_CPP_MIN_LOG_LEVEL=2  no INFO/WARNING lines from TensorFlow's C++ logger (oneDNN notice,
                          CPU-feature notice, "could not find cuda drivers").
The full `tensorflow` wheel also registers its CUDA plugins twice and prints that ("Unable to
register cuFFT/cuDNN/cuBLAS factory", "computation placer already registered") through absl
before absl's logging is set up, where TF_CPP_MIN_LOG_LEVEL cannot reach; and on a machine
without a GPU its first device search logs "failed call to cuInit". So while TensorFlow loads and
lists its devices, stderr is caught at the file-descriptor level and written back without those
known lines: every other message, warnings included, still appears, in order. The cuInit line is
kept when CUDA_VISIBLE_DEVICES names a GPU (then it is a real problem), and nothing is filtered
under TF_CPP_MIN_LOG_LEVEL=0 (everything asked for). `quiet_conversion` does the same around
each TFLite conversion, whose converter repeats its own fixed lines every time. The filter itself
(ela/stderr_filter.py) loads nothing, so the interpreter-only latency children use it too.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator

from ela.stderr_filter import filtered_stderr

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STARTUP_NOISE = (
    "Unable to register cuFFT factory",
    "Unable to register cuDNN factory",
    "Unable to register cuBLAS factory",
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "computation placer already registered",
)
NO_GPU_NOISE = ("failed call to cuInit",)
CONVERTER_NOISE = (  # what every TFLite conversion prints through the same uninitialised absl logging
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "Ignored output_format.",
    "Ignored drop_control_dependency.",
    "MLIR V1 optimization pass is not enabled",
    "fully_quantize: 0, inference_type: 6",
)


def startup_noise() -> tuple[str, ...]:
    """The start-up messages that are noise here: the cuInit failure only when no GPU is asked for."""
    gpu_requested = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip() not in ("", "-1")
    return STARTUP_NOISE + (() if gpu_requested else NO_GPU_NOISE)


@contextmanager
def quiet_conversion() -> Iterator[None]:
    """Around a TFLite conversion: without the converter's known chatter (CONVERTER_NOISE) and
    its warning that a uint8 input has no quantisation statistics (FakeLens' int8 input takes raw
    pixels at scale 1, zero point 0, which tests/test_convert.py checks)."""
    with warnings.catch_warnings(), filtered_stderr(CONVERTER_NOISE):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        yield


def load_quietly() -> None:
    """Import TensorFlow and let it find its devices, with the known start-up lines filtered from stderr."""
    with filtered_stderr(startup_noise()):
        import tensorflow as tf
        tf.config.list_physical_devices()  # the device search, and its cuInit message, happen now


load_quietly()
