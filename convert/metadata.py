"""TFLite metadata for FakeLens models: one typed `ModelInfo` ↔ the metadata in a .tflite.

The writer packs, with tflite-support's schema and populator: name, version, description,
author, licence; the input's image properties and normalisation (mean 0, std 1: the model takes
RGB pixels 0..255 and rescales itself); the output's labels as an associated `labels.txt`; and
everything a phone or the benchmark needs to preprocess exactly as in training — the
`Preprocessing` (ELA parameters included), labels, score threshold (and the threshold baked into
the scores, if any, or the band of uncertain verdicts around it, if chosen), and the facts the
benchmark pairs and splits models by (the training run, its protocol, the sources it trained
on) — as an associated `fakelens.json`, repeated in the subgraph's custom metadata.
`read_model_info` is the exact inverse; a model without these is a clear `MetadataError`.
Exports of schema 1 (those facts in the free-form `extra`) are still read.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import flatbuffers
from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
from tensorflow_lite_support.metadata import schema_py_generated as tfl_schema
from tensorflow_lite_support.metadata.python import metadata as tflite_metadata

from ela import Preprocessing, __version__, fields
from convert.variants import REFERENCE
from train.metrics import in_band
from ela.files import MAX_MODEL_BYTES, FileProblem, read_regular

INFO_FILE = "fakelens.json"
LABEL_FILE = "labels.txt"
CARD_FILE = "MODEL_CARD.md"  # the export's model card (convert/model_card.py), when given
CUSTOM_NAME = "fakelens"
INFO_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, INFO_SCHEMA_VERSION)  # 1: run, protocol and sources only in `extra`
LABELS = ("real", "fake")  # output order of every FakeLens classifier
MAX_ASSOCIATED_BYTES = 1 << 20  # associated files are small text; refuse anything larger
INPUT_MEAN, INPUT_STD = 0.0, 1.0  # the input's normalisation: none, the model rescales pixels 0..255 itself


class MetadataError(ValueError):
    """A .tflite that is not a FakeLens model with readable metadata."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    preprocessing: Preprocessing
    config: str = ""
    run: str = ""  # the training run folder's name: the exports of one run are compared with each other
    protocol: str = ""  # the run's data protocol ("as_is" or "controlled")
    train_sources: tuple[str, ...] = ()  # what the run trained on; the benchmark's held-out generators are the rest
    variant: str = REFERENCE
    labels: tuple[str, ...] = LABELS
    threshold: float = 0.5  # fake when p(fake) >= threshold
    ela_in_graph: bool = False
    baked_threshold: float | None = None  # the threshold folded into the scores (`threshold` is then 0.5)
    mirror_average: bool = False  # the score is averaged over the image and its mirror image (convert/mirror.py)
    uncertain_band: tuple[float, float] | None = None  # (low, high): low < p(fake) < high is an uncertain verdict
    # (train.metrics.uncertain_band, chosen on validation by convert --threshold_target); None: not chosen
    description: str = "FakeLens: detects AI-generated (fake) vs real face images."
    version: str = __version__
    author: str = "FakeLens"
    license: str = "Apache-2.0 (code); see the training data's licences for the weights"
    extra: dict = field(default_factory=dict)  # free-form facts for people (e.g. the images per source/split)

    @property
    def input_preprocessing(self) -> Preprocessing:
        """What a caller does before invoking the model: everything except an in-graph ELA."""
        return dataclasses.replace(self.preprocessing, ela=None) if self.ela_in_graph else self.preprocessing

    def is_uncertain(self, p_fake: float) -> bool | None:
        """Whether a verdict at this p(fake) is uncertain (close to the threshold, where this
        model's validation verdicts were least reliable); None when the model carries no band."""
        return None if self.uncertain_band is None else bool(in_band(p_fake, self.uncertain_band))

    @property
    def kind(self) -> tuple:
        """What a quantised export must share with the float32 export it is compared with: the
        run and what the graph does besides classifying."""
        return self.run, self.ela_in_graph, self.mirror_average

    def to_json(self) -> dict:
        return {"schema_version": INFO_SCHEMA_VERSION, "model_name": self.name, "config": self.config,
                "run": self.run, "protocol": self.protocol, "train_sources": list(self.train_sources),
                "variant": self.variant, "labels": list(self.labels), "threshold": self.threshold,
                "ela_in_graph": self.ela_in_graph, "baked_threshold": self.baked_threshold,
                "mirror_average": self.mirror_average, "preprocessing": self.preprocessing.to_dict(),
                "uncertain_band": None if self.uncertain_band is None else list(self.uncertain_band),
                "version": self.version, "extra": self.extra}

    @classmethod
    def from_json(cls, d: dict, description: str = "", author: str = "", license: str = "") -> "ModelInfo":
        """The inverse of `to_json`, for a file's contents: each field type- and range-checked,
        so a damaged or hand-edited fakelens.json is refused rather than misread. A schema-1
        document is read through `from_schema_1`."""
        version = d.get("schema_version") if isinstance(d, dict) else None
        if type(version) is not int or version not in READABLE_SCHEMA_VERSIONS:
            raise MetadataError(f"{INFO_FILE} schema version {version!r:.40} is not supported (this FakeLens reads "
                                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}) — re-export the model with this FakeLens")
        try:
            if version == 1:
                d = from_schema_1(d)
            labels = d.get("labels")
            if labels != list(LABELS):
                raise fields.FieldError(f"{INFO_FILE}.labels must be {list(LABELS)}, got {labels!r:.60}")
            extra = fields.mapping(d.get("extra", {}), f"{INFO_FILE}.extra")
            threshold = fields.number(d, "threshold", INFO_FILE, 0.0, 1.0, open_interval=True)
            return cls(name=fields.text(d, "model_name", INFO_FILE), labels=LABELS,
                       preprocessing=Preprocessing.from_dict(d.get("preprocessing"), f"{INFO_FILE}.preprocessing"),
                       config=fields.text(d, "config", INFO_FILE, ""), run=fields.text(d, "run", INFO_FILE, ""),
                       protocol=fields.text(d, "protocol", INFO_FILE, ""),
                       train_sources=fields.texts(d, "train_sources", INFO_FILE, ()),
                       variant=fields.text(d, "variant", INFO_FILE, ""),
                       threshold=threshold, uncertain_band=uncertain_band(d, threshold),
                       ela_in_graph=fields.boolean(d, "ela_in_graph", INFO_FILE, False),
                       baked_threshold=baked_threshold(d),
                       mirror_average=fields.boolean(d, "mirror_average", INFO_FILE, False), description=description,
                       version=fields.text(d, "version", INFO_FILE, ""), author=author, license=license, extra=extra)
        except ValueError as err:
            raise MetadataError(f"{err} — re-export the model with `python -m convert`") from None


def from_schema_1(d: dict) -> dict:
    """A schema-1 fakelens.json as schema 2: `extra.run` and `extra.protocol` become fields, and
    the trained-on sources are the `source` parts of `extra.data_counts`' "source/split" keys."""
    extra = dict(fields.mapping(d.get("extra", {}), f"{INFO_FILE}.extra"))
    counts = fields.mapping(extra.get("data_counts", {}), f"{INFO_FILE}.extra.data_counts")
    sources = sorted({key.split("/")[0] for key in counts})
    return dict(d, run=extra.pop("run", ""), protocol=extra.pop("protocol", ""), train_sources=sources, extra=extra)


def baked_threshold(d: dict) -> float | None:
    """fakelens.json's `baked_threshold`: null, or the threshold in (0, 1) folded into the scores."""
    if d.get("baked_threshold") is None:
        return None
    return fields.number(d, "baked_threshold", INFO_FILE, 0.0, 1.0, open_interval=True)


def uncertain_band(d: dict, threshold: float) -> tuple[float, float] | None:
    """fakelens.json's `uncertain_band`: null (or absent: older exports), or [low, high] with
    0 <= low <= threshold <= high <= 1."""
    band = d.get("uncertain_band")
    if band is None:
        return None
    where = f"{INFO_FILE}.uncertain_band"
    if not isinstance(band, list) or len(band) != 2:
        raise fields.FieldError(f"{where} must be null or [low, high], got {band!r:.60}")
    low = fields.number({"low": band[0]}, "low", where, 0.0, threshold)
    high = fields.number({"high": band[1]}, "high", where, threshold, 1.0)
    return low, high


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
    meta.description = f"Softmax over {list(info.labels)}; fake when p(fake) >= {info.threshold}" + (
        f" (threshold {info.baked_threshold} baked in: the top class is the decision)"
        if info.baked_threshold is not None else "") + (
        f"; uncertain when {info.uncertain_band[0]:.4f} < p(fake) < {info.uncertain_band[1]:.4f}"
        if info.uncertain_band is not None else "") + "."
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
    except (OSError, EOFError, NotImplementedError, ValueError, zlib.error) as err:  # a damaged archive entry
        raise MetadataError(f"{where}: damaged associated file {name} ({err.__class__.__name__}) — copy or "
                            f"export the model again") from None


def read_model_card(model: str | Path) -> str:
    """The model card packed into a FakeLens .tflite, or "" for an export without one."""
    try:
        return _associated_file(read_model_bytes(model), CARD_FILE, str(model)).decode("utf-8")
    except MetadataError:
        return ""


def tensor_shapes(model: bytes) -> tuple[list[list[int]], list[list[int]]]:
    """The shapes of the model's input and output tensors, read from the flatbuffer (no interpreter)."""
    graph = tfl_schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    shape = lambda i: [int(v) for v in graph.Tensors(i).ShapeAsNumpy()] if graph.Tensors(i).ShapeLength() else []  # noqa: E731
    return ([shape(graph.Inputs(i)) for i in range(graph.InputsLength())],
            [shape(graph.Outputs(i)) for i in range(graph.OutputsLength())])


def read_model_bytes(path: str | Path) -> bytes:
    """A model file's bytes: a regular file within the size limit, or a MetadataError naming it."""
    try:
        return read_regular(path, MAX_MODEL_BYTES, "model file")
    except FileProblem as err:
        raise MetadataError(str(err)) from None


def read_model_info(model: str | Path | bytes) -> ModelInfo:
    """The `ModelInfo` written into a FakeLens .tflite (path or bytes)."""
    where = "<model bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
    if not isinstance(model, (bytes, bytearray)):
        model = read_model_bytes(model)
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
    try:
        meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(meta_buf, 0))
    except Exception as err:  # offsets inside the metadata point outside the buffer
        raise MetadataError(f"{where}: damaged TFLite metadata ({err.__class__.__name__}) — copy or export the "
                            f"model again") from None
    try:
        info_json = json.loads(_associated_file(bytes(model), INFO_FILE, where))
    except ValueError as err:  # not JSON, or not UTF-8
        raise MetadataError(f"{where}: {INFO_FILE} is not valid JSON ({' '.join(str(err).split())[:200]}) — "
                            f"re-export the model") from None
    dec = lambda b: b.decode("utf-8") if isinstance(b, bytes) else (b or "")  # noqa: E731
    try:
        info = ModelInfo.from_json(info_json, description=dec(meta.description), author=dec(meta.author),
                                   license=dec(meta.license))
    except MetadataError as err:
        raise MetadataError(f"{where}: {err}") from None
    size = info.preprocessing.input_size
    try:
        inputs, outputs = tensor_shapes(bytes(model))
    except Exception as err:  # a damaged graph inside a readable metadata block
        raise MetadataError(f"{where}: unreadable TensorFlow Lite graph ({err.__class__.__name__}) — copy or "
                            f"export it again") from None
    if len(inputs) != 1 or inputs[0][1:] != [size, size, 3]:
        raise MetadataError(f"{where}: the model takes input(s) {inputs} but its {INFO_FILE} says {size}x{size} RGB "
                            f"(one image) — the metadata belongs to another model; re-export it with `python -m convert`")
    if len(outputs) != 1 or outputs[0][1:] != [len(LABELS)]:
        raise MetadataError(f"{where}: the model gives output(s) {outputs}, not one score per label {list(LABELS)} — "
                            f"FakeLens reads two-class classifiers exported by `python -m convert`")
    return info
