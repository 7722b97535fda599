"""TFLite metadata for FakeLens models: one typed `ModelInfo` ↔ the metadata in a .tflite.

The writer packs, with tflite-support's schema and populator: name, version, description,
author, licence; the input's image properties and normalisation (mean 0, std 1: the model takes
RGB pixels 0..255 and rescales itself); the output's labels as an associated `labels.txt`; and
everything a phone or the benchmark needs to preprocess exactly as in training — the
`Preprocessing` (ELA parameters included), labels, score threshold — as an associated
`fakelens.json`, repeated in the subgraph's custom metadata. `read_model_info` is the exact
inverse; a model without these is a clear `MetadataError`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import flatbuffers
from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
from tensorflow_lite_support.metadata import schema_py_generated as tfl_schema
from tensorflow_lite_support.metadata.python import metadata as tflite_metadata

from ela import Preprocessing

INFO_FILE = "fakelens.json"
LABEL_FILE = "labels.txt"
CARD_FILE = "MODEL_CARD.md"  # the export's model card (convert/model_card.py), when given
CUSTOM_NAME = "fakelens"
INFO_SCHEMA_VERSION = 1
MAX_ASSOCIATED_BYTES = 1 << 20  # associated files are small text; refuse anything larger
INPUT_MEAN, INPUT_STD = 0.0, 1.0  # the input's normalisation: none, the model rescales pixels 0..255 itself


class MetadataError(ValueError):
    """A .tflite that is not a FakeLens model with readable metadata."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    preprocessing: Preprocessing
    config: str = ""
    variant: str = "float32"
    labels: tuple[str, ...] = ("real", "fake")
    threshold: float = 0.5  # fake when p(fake) >= threshold
    ela_in_graph: bool = False
    description: str = "FakeLens: detects AI-generated (fake) vs real face images."
    version: str = "0.1.0"
    author: str = "FakeLens"
    license: str = "Apache-2.0 (code); see the training data's licences for the weights"
    extra: dict = field(default_factory=dict)  # free-form facts (e.g. training data hash)

    @property
    def input_preprocessing(self) -> Preprocessing:
        """What a caller does before invoking the model: everything except an in-graph ELA."""
        return dataclasses.replace(self.preprocessing, ela=None) if self.ela_in_graph else self.preprocessing

    def to_json(self) -> dict:
        return {"schema_version": INFO_SCHEMA_VERSION, "model_name": self.name, "config": self.config,
                "variant": self.variant, "labels": list(self.labels), "threshold": self.threshold,
                "ela_in_graph": self.ela_in_graph, "preprocessing": self.preprocessing.to_dict(),
                "version": self.version, "extra": self.extra}

    @classmethod
    def from_json(cls, d: dict, description: str = "", author: str = "", license: str = "") -> "ModelInfo":
        if d.get("schema_version") != INFO_SCHEMA_VERSION:
            raise MetadataError(f"{INFO_FILE} schema version {d.get('schema_version')!r} is not supported "
                                f"(expected {INFO_SCHEMA_VERSION}) — re-export the model with this FakeLens")
        return cls(name=d["model_name"], preprocessing=Preprocessing.from_dict(d["preprocessing"]),
                   config=d.get("config", ""), variant=d.get("variant", ""), labels=tuple(d["labels"]),
                   threshold=float(d["threshold"]), ela_in_graph=bool(d.get("ela_in_graph", False)),
                   description=description, version=d.get("version", ""), author=author, license=license,
                   extra=d.get("extra", {}))


def _input_metadata(info: ModelInfo) -> fb.TensorMetadataT:
    meta = fb.TensorMetadataT()
    meta.name = "image"
    ela = info.preprocessing.ela
    meta.description = (f"RGB image {info.preprocessing.input_size}x{info.preprocessing.input_size}, pixels 0..255"
                        + (f", after ELA (see {INFO_FILE})" if ela and not info.ela_in_graph else ""))
    meta.content = fb.ContentT()
    meta.content.contentProperties = fb.ImagePropertiesT()
    meta.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    meta.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    norm = fb.NormalizationOptionsT()
    norm.mean, norm.std = [INPUT_MEAN], [INPUT_STD]
    unit = fb.ProcessUnitT()
    unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    meta.processUnits = [unit]
    meta.stats = fb.StatsT()
    meta.stats.min, meta.stats.max = [0.0], [255.0]
    return meta


def _output_metadata(info: ModelInfo) -> fb.TensorMetadataT:
    meta = fb.TensorMetadataT()
    meta.name = "probability"
    meta.description = f"Softmax over {list(info.labels)}; fake when p(fake) >= {info.threshold}."
    meta.content = fb.ContentT()
    meta.content.contentProperties = fb.FeaturePropertiesT()
    meta.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    meta.stats = fb.StatsT()
    meta.stats.min, meta.stats.max = [0.0], [1.0]
    labels = fb.AssociatedFileT()
    labels.name = LABEL_FILE
    labels.description = "Class labels, one per line, in output order."
    labels.type = fb.AssociatedFileType.TENSOR_AXIS_LABELS
    meta.associatedFiles = [labels]
    return meta


def write_metadata(model: bytes, info: ModelInfo, card: str = "") -> bytes:
    """Return `model` (a .tflite flatbuffer) with FakeLens metadata and associated files
    (with `card`, the model card as MODEL_CARD.md too)."""
    info_json = json.dumps(info.to_json(), indent=2, sort_keys=True).encode("utf-8")
    model_meta = fb.ModelMetadataT()
    model_meta.name = info.name
    model_meta.description = info.description
    model_meta.version = info.version
    model_meta.author = info.author
    model_meta.license = info.license
    info_file = fb.AssociatedFileT()
    info_file.name = INFO_FILE
    info_file.description = "FakeLens preprocessing (ELA parameters, input size), labels and threshold (JSON)."
    info_file.type = fb.AssociatedFileType.DESCRIPTIONS
    model_meta.associatedFiles = [info_file]
    files = {INFO_FILE: info_json, LABEL_FILE: ("\n".join(info.labels) + "\n").encode("utf-8")}
    if card:
        card_file = fb.AssociatedFileT()
        card_file.name = CARD_FILE
        card_file.description = "Model card: intended use, training data, preprocessing, validation, limits (Markdown)."
        card_file.type = fb.AssociatedFileType.DESCRIPTIONS
        model_meta.associatedFiles.append(card_file)
        files[CARD_FILE] = card.encode("utf-8")
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_input_metadata(info)]
    subgraph.outputTensorMetadata = [_output_metadata(info)]
    custom = fb.CustomMetadataT()
    custom.name = CUSTOM_NAME
    custom.data = list(info_json)
    subgraph.customMetadata = [custom]
    model_meta.subgraphMetadata = [subgraph]

    builder = flatbuffers.Builder(0)
    builder.Finish(model_meta.Pack(builder), tflite_metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = tflite_metadata.MetadataPopulator.with_model_buffer(model)
    populator.load_metadata_buffer(builder.Output())
    populator.load_associated_file_buffers(files)
    populator.populate()
    return bytes(populator.get_model_buffer())


def _associated_file(model: bytes, name: str, where: str) -> bytes:
    """Read one associated file from the zip appended to the model, by name only (never a path
    from the archive) and at most MAX_ASSOCIATED_BYTES."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            entry = zf.getinfo(name)
            if entry.file_size > MAX_ASSOCIATED_BYTES:
                raise MetadataError(f"{where}: associated file {name} is {entry.file_size} bytes, over the "
                                    f"{MAX_ASSOCIATED_BYTES}-byte limit — not a FakeLens export")
            return zf.read(entry)
    except (zipfile.BadZipFile, KeyError):
        raise MetadataError(f"{where}: has no {name} — not exported by FakeLens; "
                            f"re-export it with `python -m convert`") from None


def read_model_card(model: str | Path) -> str:
    """The model card packed into a FakeLens .tflite, or "" for an export without one."""
    try:
        return _associated_file(Path(model).read_bytes(), CARD_FILE, str(model)).decode("utf-8")
    except MetadataError:
        return ""


def input_shape(model: bytes) -> list[int]:
    """The shape of the model's first input tensor, read from the flatbuffer (no interpreter)."""
    graph = tfl_schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    shape = graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()
    return [int(v) for v in shape] if not isinstance(shape, int) else []


def read_model_info(model: str | Path | bytes) -> ModelInfo:
    """The `ModelInfo` written into a FakeLens .tflite (path or bytes)."""
    where = "<model bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
    if not isinstance(model, (bytes, bytearray)):
        try:
            model = Path(model).read_bytes()
        except FileNotFoundError:
            raise MetadataError(f"{where}: no such model file — check the path") from None
        except IsADirectoryError:
            raise MetadataError(f"{where}: is a directory, not a .tflite file — pass the file itself") from None
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise MetadataError(f"{where}: not a TensorFlow Lite model (no TFL3 identifier) — "
                            f"pass a .tflite file exported by `python -m convert`")
    try:
        meta_buf = tflite_metadata.get_metadata_buffer(bytes(model))
    except Exception as err:  # a damaged flatbuffer raises from deep inside flatbuffers
        raise MetadataError(f"{where}: unreadable TensorFlow Lite model ({err.__class__.__name__}) — the file is "
                            f"damaged or cut short; copy or export it again") from None
    if not meta_buf:
        raise MetadataError(f"{where}: has no TFLite metadata — export it with `python -m convert`, "
                            f"which writes the preprocessing the model needs")
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(meta_buf, 0))
    try:
        info_json = json.loads(_associated_file(bytes(model), INFO_FILE, where))
    except json.JSONDecodeError as err:
        raise MetadataError(f"{where}: {INFO_FILE} is not valid JSON ({err}) — re-export the model") from None
    dec = lambda b: b.decode("utf-8") if isinstance(b, bytes) else (b or "")  # noqa: E731
    try:
        info = ModelInfo.from_json(info_json, description=dec(meta.description), author=dec(meta.author),
                                   license=dec(meta.license))
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise MetadataError(f"{where}: {INFO_FILE} is incomplete or invalid ({err}) — re-export the model") from None
    size = info.preprocessing.input_size
    shape = input_shape(bytes(model))
    if shape[1:] != [size, size, 3]:
        raise MetadataError(f"{where}: the model takes input {shape} but its {INFO_FILE} says {size}x{size} RGB — "
                            f"the metadata belongs to another model; re-export it with `python -m convert`")
    return info
