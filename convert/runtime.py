"""Running a .tflite with the ai-edge-litert interpreter, quantisation handled in one place.

Imports only the interpreter (not tflite-support, which loads TensorFlow), so a fresh process that
measures latency and memory starts in a fraction of a second."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from ela.files import MAX_MODEL_BYTES, read_regular


MAX_TENSOR_BYTES = 2 << 30  # MobileNet V1 at 224 px needs about 30 MB of tensors


def _model_error(message: str) -> Exception:
    from convert.metadata import MetadataError  # loads TensorFlow: only on this error path
    return MetadataError(message)


def declared_tensor_bytes(content: bytes) -> int:
    """An upper bound of the memory the graph's tensors declare (8 bytes an element), read from the
    flatbuffer before the interpreter sees it: a damaged file can declare a tensor of billions of
    elements, which allocation would otherwise try to provide. 0 when the file is too damaged to
    read; the interpreter's own verifier refuses those."""
    try:
        model = schema.Model.GetRootAsModel(content, 0)
        total = 0
        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                tensor = graph.Tensors(t)
                total += 8 * math.prod(abs(int(v)) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else 8
        return total
    except Exception:  # noqa: BLE001 - offsets outside the buffer, in any of flatbuffers' ways
        return 0


def dequantise(values: np.ndarray, details: dict) -> np.ndarray:
    """A tensor's values as float32, by its interpreter details (an integer tensor carries a scale
    and zero point; a float one has scale 0)."""
    scale, zero = details["quantization"]
    if values.dtype == np.float32 or not scale:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


class TfliteModel:
    """A loaded .tflite classifier: `probabilities(x)` maps uint8 images (N, S, S, 3) to float
    softmax rows (N, 2), quantising the input and dequantising the output as the file says."""

    def __init__(self, model: str | Path | bytes, num_threads: int = 1, keep_tensors: bool = False):
        """keep_tensors: every intermediate tensor stays readable after `invoke` (for
        `benchmark.layer_error`; more memory, debugging only)."""
        content = model if isinstance(model, (bytes, bytearray)) else read_regular(model, MAX_MODEL_BYTES, "model file")
        where = "<model bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
        declared = declared_tensor_bytes(bytes(content))
        if declared > MAX_TENSOR_BYTES:
            raise _model_error(f"{where}: its tensors would take {declared / 2**30:,.1f} GiB (limit "
                               f"{MAX_TENSOR_BYTES / 2**30:g} GiB) — the file is damaged or not a phone model")
        try:
            self.interpreter = Interpreter(model_content=bytes(content), num_threads=num_threads,
                                           experimental_preserve_all_tensors=keep_tensors)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:  # a damaged graph: refused at load or at allocation
            raise _model_error(f"{where}: the interpreter cannot load it ({' '.join(str(err).split())[:300]}) — "
                               f"copy or export it again") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_size = int(self.input["shape"][1])

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return x.astype(np.float32)
        scale, zero = self.input["quantization"]
        if scale in (0.0, 1.0) and zero == 0 and dtype == np.uint8:
            return x.astype(np.uint8)
        info = np.iinfo(dtype)
        return np.clip(np.rint(x.astype(np.float64) / scale + zero), info.min, info.max).astype(dtype)

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        return dequantise(y, self.output)

    def invoke(self, image: np.ndarray) -> np.ndarray:
        """One image (S, S, 3) → its raw output row; used by latency measurements."""
        self.interpreter.set_tensor(self.input["index"], self._quantise(image[None]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        if images.ndim != 4 or images.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"images of shape {images.shape[1:3]} given to a model whose input is "
                             f"{self.input_size}x{self.input_size}")
        return np.stack([self._dequantise(self.invoke(img)) for img in images]) if len(images) else \
            np.zeros((0, 2), np.float32)
