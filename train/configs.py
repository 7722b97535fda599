"""Named experiment configs: the paper's four models (plus its dropout variant), the recommended
`fakelens` detector and the demo.

All paper configs use MobileNet V1 (alpha 1.0, 224×224, ImageNet init) and Adam at lr 1e-4,
as in the study. A config is a dataclass of three groups (data, model, optim, as in
tensorflow/models' nested configs) and a seed; `override` sets any field by its dotted path or
its shortcut (flags are shortcuts of it); the resolved config is saved as config.json next to
the run, so a run folder says exactly how it was made. The paper's own numbers, and which
config reproduces which of its columns, are in benchmark/tables.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Optional

from ela import ElaParams, FormatControl, Preprocessing
from train.augment import Augmentation

GAN_SOURCES = ("real_ciplab", "gan_faces")
SD_SOURCES = ("sd21_faces",)  # the paper trained on SD 1.1/1.5/2.1; data v2 has SD 2.1 faces
PROTOCOLS = ("as_is", "controlled")
STRATEGIES = ("default", "mirrored", "multi_worker")  # where a run trains: train/distribute.py
LR_SCHEDULES = ("constant", "cosine")  # the learning rate over a run: fixed, or cosine decay to 0
PRECISIONS = ("float32", "mixed_bfloat16")  # what the trained layers compute in while they train (train.model)
LR_SCALINGS = ("linear", "none")  # learning rate under N replicas: × N, or as configured


@dataclass(frozen=True)
class DataConfig:
    """What the model is trained on, and how each image is prepared."""
    sources: tuple[str, ...] = ()  # () = every source that has training images (resolved when a run starts)
    exclude_sources: tuple[str, ...] = ()  # left out of `sources`, e.g. a generator held out for testing
    max_per_source: Optional[int] = None  # cap per source and split, for quick runs
    balance: bool = False  # weight the loss so each class, and each source within a class, counts equally
    source_weights: tuple[str, ...] = ()  # with balance: "source=w" items; a source's share of its class is
    # proportional to w (1 when not named), e.g. ("gan_faces=0.5",) gives GAN faces half an SD source's share
    content_balance: float = 0.0  # > 0: weight the loss so content (a thumbnail) cannot tell the classes apart; the
    # weight factor's clip (train/content_balance.py); 0 = off
    augment: Optional[Augmentation] = None  # per-epoch augmentation of training images (train.augment)
    ela: Optional[ElaParams] = None
    protocol: str = "as_is"  # "controlled": the format-controlled protocol (ela.FormatControl)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.content_balance and not self.content_balance >= 1:
            raise ValueError(f"content_balance is a weight clip: 0 (off) or at least 1, got {self.content_balance}")
        if self.source_weights and not self.balance:
            raise ValueError("source_weights set a source's share of the balanced loss: set data.balance=true too")
        self.source_weight_map()  # malformed items fail when the config is made, not when training starts

    def source_weight_map(self) -> dict[str, float]:
        """`source_weights` as {source: weight}, each source once with a positive finite weight
        (leave a source out with exclude_sources, not weight 0)."""
        weights = {}
        for item in self.source_weights:
            source, _, text = str(item).partition("=")
            try:
                weight = float(text)
            except ValueError:
                weight = math.nan
            if not source.strip() or not 0 < weight < math.inf or source.strip() in weights:
                raise ValueError(f"source_weights item {item!r}: write source=weight once per source with a "
                                 f"positive weight, e.g. gan_faces=0.5")
            weights[source.strip()] = weight
        return weights


@dataclass(frozen=True)
class ModelConfig:
    """The MobileNet V1 classifier: its input, width, start weights and which layers train."""
    unfreeze: int  # last N layers of MobileNet trainable (the head always is)
    input_size: int = 224
    alpha: float = 1.0
    weights: str = "imagenet"  # "imagenet", "none" (random init) or a path to an .h5 file
    dropout: float = 0.0
    grey: bool = False  # MobileNet sees luma only: greyscale cannot change a decision (train/model.py)
    experts: bool = False  # one trained tail per fake source behind the shared frozen layers, a photo called fake
    # when any tail calls it fake (train/experts.py)

    def __post_init__(self):
        if self.unfreeze < 0:
            raise ValueError(f"unfreeze must be >= 0, got {self.unfreeze}")
        if not self.alpha > 0:
            raise ValueError(f"alpha (the MobileNet width) must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class OptimConfig:
    """How the trainable layers are fitted."""
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"
    epochs: int = 10
    batch_size: int = 32
    cache_trunk: bool = True  # compute the frozen layers once per image (same result, much faster)
    cache_float16: bool = False  # keep those activations as float16: half the memory (most of a run's, e.g. 8 views
    # at 288 px), at a relative rounding of at most 2^-11; each batch is read back as float32
    consistency: float = 0.0  # > 0: train on two augmented views per image, this weight × their JS divergence
    # added to the loss (train/consistency.py); epoch e then reads views 2e and 2e+1
    real_share: float = 1.0  # < 1: each epoch trains on this share of the real images (every fake), drawn afresh
    # per epoch, their loss weights scaled up to keep the classes' balance (train.run.epoch_rows)
    precision: str = "float32"  # "mixed_bfloat16": the trained layers compute in bfloat16 on float32 weights while
    # they train (faster steps where the CPU has bfloat16 units, e.g. AMX: docs/results.md §5, session 22), so the
    # best epoch is chosen on that copy's validation loss; the frozen layers, their cache, the final validation
    # scores of the model and the model saved stay float32

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.consistency >= 0:
            raise ValueError(f"consistency is a loss weight: 0 (off) or positive, got {self.consistency}")
        if not 0 < self.real_share <= 1:
            raise ValueError(f"real_share is the share of real images an epoch trains on: in (0, 1], got "
                             f"{self.real_share}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


GROUP_TYPES = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig}  # TrainConfig's groups of fields
NESTED = {"ela": ElaParams, "augment": Augmentation}  # fields inside a group that are groups of fields themselves


@dataclass
class TrainConfig:
    """A named experiment: its data, model and optimisation groups, and the seed.

    config.json holds `to_dict()`: the groups nested ({"data": {...}, "model": {...}, "optim":
    {...}}), ELA once (data.ela). `from_dict` also reads the flat layout of run folders written
    before the groups existed (and ignores their `calibration_size` and `preprocessing`, which
    now belong to convert and to `preprocessing()`)."""
    name: str
    description: str
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig = OptimConfig()
    seed: int = 0

    def __post_init__(self):
        self.preprocessing()  # input_size and the ELA settings are checked by their own definition

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(input_size=self.model.input_size, ela=self.data.ela,
                             format_control=FormatControl() if self.data.protocol == "controlled" else None)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "seed": self.seed,
                **{group: _plain(getattr(self, group)) for group in GROUP_TYPES}}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        grouped = all(isinstance(d.get(group), dict) for group in GROUP_TYPES)
        groups = {}
        for group, kind in GROUP_TYPES.items():
            fields = d[group] if grouped else d  # the flat layout: every field at the top
            names = {f.name for f in dataclasses.fields(kind)}
            values = {k: v for k, v in fields.items() if k in names}
            for k, v in values.items():
                if k in NESTED:
                    values[k] = NESTED[k].from_dict(v) if v else None
                elif isinstance(v, list):
                    values[k] = tuple(v)
            groups[group] = kind(**values)
        return cls(name=d["name"], description=d["description"], seed=d.get("seed", 0), **groups)


def _plain(group) -> dict:
    """A group of fields as JSON-ready values (tuples as lists, nested groups through their to_dict)."""
    out = {}
    for f in dataclasses.fields(group):
        value = getattr(group, f.name)
        out[f.name] = value.to_dict() if dataclasses.is_dataclass(value) else \
            list(value) if isinstance(value, tuple) else value
    return out


ELA_90 = ElaParams(quality=90, scale="auto", resolution="full")

CONFIGS: dict[str, TrainConfig] = {
    c.name: c
    for c in [
        TrainConfig("gan", "Paper model 1: real + GAN faces, last 10 layers unfrozen", DataConfig(GAN_SOURCES),
                    ModelConfig(unfreeze=10)),
        TrainConfig("gan_ela", "Paper model 2: real + GAN faces through ELA, last 20 layers unfrozen",
                    DataConfig(GAN_SOURCES, ela=ELA_90), ModelConfig(unfreeze=20)),
        TrainConfig("gan_sd", "Paper model 3: real + GAN + Stable Diffusion, last 10 layers unfrozen",
                    DataConfig(GAN_SOURCES + SD_SOURCES), ModelConfig(unfreeze=10)),
        TrainConfig("gan_sd_dropout", "Paper model 3, dropout-0.5 variant", DataConfig(GAN_SOURCES + SD_SOURCES),
                    ModelConfig(unfreeze=10, dropout=0.5)),
        TrainConfig("gan_sd_ela", "Paper model 4: real + GAN + SD through ELA, last 20 layers unfrozen",
                    DataConfig(GAN_SOURCES + SD_SOURCES, ela=ELA_90), ModelConfig(unfreeze=20)),
        TrainConfig("fakelens", "Recommended: every source of the data, augmented against format, size and colour "
                    "shortcuts, class- and source-balanced, one expert tail per fake source",
                    DataConfig(augment=Augmentation(views=8, grey_p=0.5), balance=True),
                    ModelConfig(unfreeze=50, dropout=0.5, experts=True),  # 50: MobileNet blocks 6-13 trained
                    OptimConfig(epochs=20, lr_schedule="cosine", cache_float16=True, precision="mixed_bfloat16")),
        TrainConfig("demo", "Demo: the fakelens recipe on the synthetic dataset (numbers mean nothing about real "
                    "deepfakes)", DataConfig(augment=Augmentation(views=2), balance=True),
                    ModelConfig(unfreeze=10, dropout=0.5), OptimConfig(epochs=4)),
    ]
}


def field_path(name: str) -> list[str]:
    """The dotted path of a config field: "optim.epochs" as it is, and the shortcut of a field that
    only one group has ("epochs", "augment.grey_p") resolved to it (so every --set written before
    the groups existed still works)."""
    path = name.strip().split(".")
    if path[0] not in GROUP_TYPES:
        owners = [group for group, kind in GROUP_TYPES.items() if path[0] in {f.name for f in dataclasses.fields(kind)}]
        if len(owners) == 1:
            path = owners + path
    return path


def with_fields(cfg: TrainConfig, **values) -> TrainConfig:
    """`cfg` with fields set by name (a group's field by its shortcut, `epochs=3`), the one way every
    override is applied: `override`'s "--set" items, `python -m train`'s named flags and code alike."""
    for name, value in values.items():
        cfg = _replace_path(cfg, field_path(name), value, f"{name}={value!r}")
    return cfg


def override(cfg: TrainConfig, items: list[str]) -> TrainConfig:
    """`cfg` with "field=value" items applied (dotted: optim.learning_rate=3e-4,
    data.augment.grey_p=0.3, or a field's shortcut: epochs=3, augment.grey_p=0.3); values are read
    as JSON (numbers, true/false, null, [lists]) or else taken as text. Every field of the config
    can be set this way; the named flags of `python -m train` are shortcuts."""
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: write field=value, e.g. optim.learning_rate=3e-4")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        cfg = _replace_path(cfg, field_path(key), value, item)
    return cfg


def set_items(cfg: TrainConfig) -> list[str]:
    """The "field=value" items that `override` turns the named config `cfg.name` into `cfg` with
    (its inverse): `python -m train --config NAME --set ITEM ...` trains exactly `cfg`. Fields
    are dotted by group (optim.epochs=3); nested groups (ela, augment) that differ are given whole."""
    base = get_config(cfg.name)
    items = []
    for path, value, default in _leaves(cfg, base, []):
        if value != default:
            plain = value.to_dict() if dataclasses.is_dataclass(value) else list(value) if isinstance(value, tuple) \
                else value
            items.append(f"{'.'.join(path)}={json.dumps(plain, separators=(',', ':'))}")
    return items


def _leaves(obj, base, path: list[str]):
    """(path, value, base value) of every field, descending into the three groups."""
    for f in dataclasses.fields(obj):
        value, default = getattr(obj, f.name), getattr(base, f.name)
        if f.name in GROUP_TYPES and not path:
            yield from _leaves(value, default, [f.name])
        else:
            yield path + [f.name], value, default


def _replace_path(obj, path: list[str], value, item: str):
    names = {f.name: f for f in dataclasses.fields(obj)}
    if path[0] not in names:
        raise ValueError(f"--set {item!r}: {type(obj).__name__} has no field {path[0]!r} — "
                         f"choose one of {', '.join(names)}")
    if len(path) > 1:
        inner = getattr(obj, path[0])
        if not dataclasses.is_dataclass(inner):
            raise ValueError(f"--set {item!r}: {path[0]} is not a group of fields (it is {inner!r})")
        value = _replace_path(inner, path[1:], value, item)
    elif isinstance(getattr(obj, path[0]), tuple) and isinstance(value, list):
        value = tuple(value)
    elif isinstance(value, dict) and path[0] in NESTED:  # a whole group: --set 'data.ela={"quality": 85}'
        value = NESTED[path[0]].from_dict(value)
    elif isinstance(value, dict) and path[0] in GROUP_TYPES:  # --set 'optim={"epochs": 3}'
        value = GROUP_TYPES[path[0]](**value)
    return dataclasses.replace(obj, **{path[0]: value})


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r} — choose one of: {', '.join(CONFIGS)}")
    return dataclasses.replace(CONFIGS[name])
