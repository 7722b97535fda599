"""Named experiment configs: the paper's four models (plus its dropout variant), the recommended
`fakelens` detector and the demo.

All paper configs use MobileNet V1 (alpha 1.0, 224×224, ImageNet init) and Adam at lr 1e-4,
as in the study. A config is a plain dataclass; flags override fields; the resolved config is
saved as config.json next to the run, so a run folder says exactly how it was made.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional

from ela import ElaParams, FormatControl, Preprocessing
from train.augment import Augmentation

GAN_SOURCES = ("real_ciplab", "gan_faces")
SD_SOURCES = ("sd21_faces",)  # the paper trained on SD 1.1/1.5/2.1; data v2 has SD 2.1 faces
PROTOCOLS = ("as_is", "controlled")
STRATEGIES = ("default", "mirrored", "multi_worker")  # where a run trains: train/distribute.py
LR_SCHEDULES = ("constant", "cosine")  # the learning rate over a run: fixed, or cosine decay to 0
LR_SCALINGS = ("linear", "none")  # learning rate under N replicas: × N, or as configured


@dataclass
class TrainConfig:
    name: str
    description: str
    sources: tuple[str, ...]  # () = every source that has training images (resolved when a run starts)
    unfreeze: int  # last N layers of MobileNet trainable (the head always is)
    exclude_sources: tuple[str, ...] = ()  # left out of `sources`, e.g. a generator held out for testing
    augment: Optional[Augmentation] = None  # per-epoch augmentation of training images (train.augment)
    balance: bool = False  # weight the loss so each class, and each source within a class, counts equally
    dropout: float = 0.0
    ela: Optional[ElaParams] = None
    protocol: str = "as_is"  # "controlled": the format-controlled protocol (ela.FormatControl)
    input_size: int = 224
    alpha: float = 1.0
    weights: str = "imagenet"  # "imagenet", "none" (random init) or a path to an .h5 file
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    max_per_source: Optional[int] = None  # cap per source and split, for quick runs
    calibration_size: int = 100  # images of the train split for int8 calibration in convert
    cache_trunk: bool = True  # compute the frozen layers once per image (same result, much faster)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.unfreeze < 0:
            raise ValueError(f"unfreeze must be >= 0, got {self.unfreeze}")
        if not self.alpha > 0:
            raise ValueError(f"alpha (the MobileNet width) must be positive, got {self.alpha}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        for name in ("epochs", "batch_size", "calibration_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        self.preprocessing()  # input_size and the ELA settings are checked by their own definition

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(input_size=self.input_size, ela=self.ela,
                             format_control=FormatControl() if self.protocol == "controlled" else None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sources"] = list(self.sources)
        d["exclude_sources"] = list(self.exclude_sources)
        d["ela"] = self.ela.to_dict() if self.ela else None
        d["augment"] = self.augment.to_dict() if self.augment else None
        d["preprocessing"] = self.preprocessing().to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["sources"] = tuple(kwargs["sources"])
        kwargs["exclude_sources"] = tuple(kwargs.get("exclude_sources", ()))
        kwargs["ela"] = ElaParams.from_dict(d["ela"]) if d.get("ela") else None
        kwargs["augment"] = Augmentation.from_dict(d["augment"]) if d.get("augment") else None
        return cls(**kwargs)


ELA_90 = ElaParams(quality=90, scale="auto", resolution="full")

CONFIGS: dict[str, TrainConfig] = {
    c.name: c
    for c in [
        TrainConfig("gan", "Paper model 1: real + GAN faces, last 10 layers unfrozen", GAN_SOURCES, unfreeze=10),
        TrainConfig("gan_ela", "Paper model 2: real + GAN faces through ELA, last 20 layers unfrozen",
                    GAN_SOURCES, unfreeze=20, ela=ELA_90),
        TrainConfig("gan_sd", "Paper model 3: real + GAN + Stable Diffusion, last 10 layers unfrozen",
                    GAN_SOURCES + SD_SOURCES, unfreeze=10),
        TrainConfig("gan_sd_dropout", "Paper model 3, dropout-0.5 variant", GAN_SOURCES + SD_SOURCES,
                    unfreeze=10, dropout=0.5),
        TrainConfig("gan_sd_ela", "Paper model 4: real + GAN + SD through ELA, last 20 layers unfrozen",
                    GAN_SOURCES + SD_SOURCES, unfreeze=20, ela=ELA_90),
        TrainConfig("fakelens", "Recommended: every source of the data, augmented against format, size and colour "
                    "shortcuts, class- and source-balanced", (), unfreeze=37,  # 37: MobileNet blocks 8-13 trained
                    dropout=0.5, augment=Augmentation(views=8), balance=True, epochs=20, lr_schedule="cosine"),
        TrainConfig("demo", "Demo: the fakelens recipe on the synthetic dataset (numbers mean nothing about real "
                    "deepfakes)", (), unfreeze=10, dropout=0.5, augment=Augmentation(views=2), balance=True,
                    epochs=4, calibration_size=50),
    ]
}

# Which paper column (Tables 1–2) each config reproduces.
PAPER_COLUMN = {"gan": "gan", "gan_ela": "gan_ela", "gan_sd": "gan_sd", "gan_sd_dropout": "gan_sd",
                "gan_sd_ela": "gan_sd_ela"}


GROUPS = {"ela": ElaParams.from_dict, "augment": Augmentation.from_dict}  # fields that hold a group of fields


def override(cfg: TrainConfig, items: list[str]) -> TrainConfig:
    """`cfg` with "field=value" items applied (nested fields dotted: augment.grey_p=0.3); values
    are read as JSON (numbers, true/false, null, [lists]) or else taken as text. Every field of
    the config can be set this way; the named flags of `python -m train` are shortcuts."""
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: write field=value, e.g. augment.grey_p=0.3")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        cfg = _replace_path(cfg, key.strip().split("."), value, item)
    return cfg


def set_items(cfg: TrainConfig) -> list[str]:
    """The "field=value" items that `override` turns the named config `cfg.name` into `cfg` with
    (its inverse): `python -m train --config NAME --set ITEM ...` trains exactly `cfg`. Groups
    (ela, augment) that differ are given whole."""
    base = get_config(cfg.name)
    items = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value == getattr(base, f.name):
            continue
        if dataclasses.is_dataclass(value):
            value = value.to_dict()
        elif isinstance(value, tuple):
            value = list(value)
        items.append(f"{f.name}={json.dumps(value, separators=(',', ':'))}")
    return items


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
    elif isinstance(value, dict) and path[0] in GROUPS:  # a whole group: --set 'ela={"quality": 85}'
        value = GROUPS[path[0]](value)
    return dataclasses.replace(obj, **{path[0]: value})


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r} — choose one of: {', '.join(CONFIGS)}")
    return dataclasses.replace(CONFIGS[name])
