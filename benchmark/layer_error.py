"""Where a quantised export departs from its float32 export, layer by layer and per source.

The benchmark's quantisation table says *that* an int8 export moves some photos (webmorph's studio
portraits, §2 of docs/results.md); this says *where*. Both .tflite files run the same images with
every intermediate tensor kept; for each layer output present in both (matched by layer and op, so
QAT exports compare too) it reports the relative error of the dequantised int8 activations,
||int8 − float|| / ||float||, per source. An error that grows through the trunk for one source and
not the others points to activation ranges (which ReLU6 pins to [0, 6] in every layer, so more
calibration images cannot move them); one that jumps at a single layer points to that layer.

  python -m benchmark.layer_error --float runs/fakelens/fakelens_none/export/fakelens_none_float32.tflite \\
    --quantised runs/fakelens/fakelens_none/export/fakelens_none_int8.tflite --data ../shared/data
"""
from __future__ import annotations

import warnings

import numpy as np
from absl import app, flags

from convert.metadata import MetadataError, read_model_info
from convert.runtime import TfliteModel, dequantise
from train.cli import main_entry, run_main
from train.data import DataError, load_records, preprocess_records, select


def tensor_key(tensor_name: str) -> tuple[str, str]:
    """(Keras layer, op) of a converter tensor name, the same in a PTQ and a QAT export:
    'm/conv_pw_5_relu/Relu6;m/conv_pw_5/Conv2D' and 'm/quant_conv_pw_5/Conv2D' → ('conv_pw_5',
    'Conv2D') (the last of the fused names, without the model's prefix or QAT's 'quant_'); a name
    outside the model's layers (the input's 'tfl.quantize') is its own key."""
    parts = tensor_name.split(";")[-1].split("/")
    if len(parts) < 3:
        return tensor_name, ""
    layer = parts[1][len("quant_"):] if parts[1].startswith("quant_") else parts[1]
    return layer, parts[-1]


class _Activations:
    """A model whose layer outputs are kept after each invocation, dequantised to float."""

    def __init__(self, path: str):
        with warnings.catch_warnings():  # "intended for debugging purposes only": this is what it is for
            warnings.simplefilter("ignore", UserWarning)
            self.model = TfliteModel(path, keep_tensors=True)  # the checks and input handling of every command
        self.interpreter = self.model.interpreter
        details = {d["index"]: d for d in self.interpreter.get_tensor_details()}
        # the ops' outputs are the activations (the other tensors are weights and constants); the
        # interpreter lists them only through this underscored call, stable since TF 2.5
        outputs = [i for op in self.interpreter._get_ops_details() for i in op["outputs"]]
        output = self.interpreter.get_output_details()[0]["index"]  # named after the serving signature
        self.tensors = {}  # (layer, op) → tensor details, the first tensor of each key
        for i in outputs:
            if i >= 0:
                self.tensors.setdefault(("output", "") if i == output else tensor_key(details[i]["name"]), details[i])

    def range(self, key: tuple[str, str]) -> tuple[float, float] | None:
        """The values an integer tensor can hold, dequantised (None for a float tensor)."""
        d = self.tensors[key]
        scale, zero = d["quantization"]
        if not scale:
            return None
        info = np.iinfo(d["dtype"])
        return float((info.min - zero) * scale), float((info.max - zero) * scale)

    def run(self, image: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        self.model.invoke(image)
        return {key: dequantise(self.interpreter.get_tensor(d["index"]), d) for key, d in self.tensors.items()}


def layer_errors(float_path: str, quantised_path: str, data: str, split: str = "val",
                 images: int = 12) -> tuple[list[str], list[dict]]:
    """(sources, rows): one row per layer output both models have, in graph order: its layer, op,
    shape, the range the quantised tensor can hold, and per source the relative error over the
    first `images` images of the split."""
    reference, other = read_model_info(float_path), read_model_info(quantised_path)
    if reference.variant != "float32":
        raise MetadataError(f"{float_path}: is a {reference.variant} export; --float takes the float32 one")
    if reference.run != other.run or reference.input_preprocessing != other.input_preprocessing:
        raise MetadataError(f"{quantised_path}: is not an export of the same run as {float_path} "
                            f"({other.run!r} vs {reference.run!r}) — compare the exports of one run")
    sources = list(reference.train_sources)
    records = select(load_records(data), sources or None, [split])
    by_source = {s: [r for r in records if r.source == s][:images] for s in sorted({r.source for r in records})}
    if not by_source:
        raise DataError(f"{data}: no {split} images of {', '.join(sources)}")
    a, b = _Activations(float_path), _Activations(quantised_path)
    shared = [n for n in a.tensors if n in b.tensors and a.tensors[n]["shape"].tolist() == b.tensors[n]["shape"].tolist()
              and a.tensors[n]["dtype"] == np.float32]
    if not shared:
        raise MetadataError(f"{quantised_path}: no layer output matches one of {float_path} by layer and op")
    sums = {n: {s: [0.0, 0.0] for s in by_source} for n in shared}  # key → source → [Σ diff², Σ float²]
    for source, recs in by_source.items():
        x, _, _, _ = preprocess_records(recs, reference.input_preprocessing, f"{source} images")
        for image in x:
            fa, fb = a.run(image), b.run(image)
            for n in shared:
                sums[n][source][0] += float(np.sum((fa[n] - fb[n]) ** 2))
                sums[n][source][1] += float(np.sum(fa[n] ** 2))
    rows = [{"layer": n[0], "op": n[1], "shape": a.tensors[n]["shape"].tolist(), "quantised_range": b.range(n),
             "relative_error": {s: (d / f) ** 0.5 if f else 0.0 for s, (d, f) in sums[n].items()}} for n in shared]
    return list(by_source), rows


def render(sources: list[str], rows: list[dict]) -> str:
    def span(r):
        return "float" if r["quantised_range"] is None else "{:.2f} … {:.2f}".format(*r["quantised_range"])

    head = ("| layer | op | shape | quantised range | " + " | ".join(sources) + " |\n|---|---|---|---|"
            + "---:|" * len(sources) + "\n")
    return head + "".join(f"| {r['layer']} | {r['op']} | {'×'.join(map(str, r['shape'][1:]))} | {span(r)} | "
                          + " | ".join(f"{r['relative_error'][s]:.3f}" for s in sources) + " |\n" for r in rows)


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("float", None, "The run's float32 .tflite export (the reference).")
    flags.DEFINE_string("quantised", None, "A quantised .tflite export of the same run (int8, int8_qat, ...).")
    flags.DEFINE_string("data", "demo_data", "Dataset holding the run's sources.")
    flags.DEFINE_string("split", "val", "Split whose images are compared.")
    flags.DEFINE_integer("images", 12, "Images per source (the first ones of the split).", lower_bound=1)


def main(argv):
    if not FLAGS.float or not FLAGS.quantised:
        raise app.UsageError("--float and --quantised are required")

    def job():
        sources, rows = layer_errors(FLAGS.float, FLAGS.quantised, FLAGS.data, FLAGS.split, FLAGS.images)
        print(f"relative error of the quantised layer outputs, ||quantised - float|| / ||float||, "
              f"{FLAGS.images} {FLAGS.split} images per source at most")
        print(render(sources, rows), end="")

    return run_main(job)


if __name__ == "__main__":
    define_flags()
    main_entry(main)
