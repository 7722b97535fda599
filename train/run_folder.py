"""A training run folder, read back: the reader lives beside the writer (`train/run.py`), so the
converter, QAT and Grad-CAM read runs without importing each other.

Also the one seeding rule every stage that trains or fine-tunes follows."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tf_keras

from train.configs import TrainConfig


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TensorFlow ops."""
    tf_keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class RunError(ValueError):
    """A run folder that cannot be converted."""


@dataclass
class Run:
    folder: Path
    config: TrainConfig
    summary: dict
    model: tf_keras.Model
    tail: str | None = None  # set for one tail of an experts run (convert/tail.py): its fake source

    @property
    def name(self) -> str:
        """The run folder's name; a tail's adds "_tail_<source>"."""
        return self.folder.resolve().name + (f"_tail_{self.tail}" if self.tail else "")


def load_run(folder: str | Path) -> Run:
    """The finished run in `folder` (its config, training summary and Keras model), or a RunError
    naming what is missing or damaged."""
    folder = Path(folder)
    config_file, model_file = folder / "config.json", folder / "model.keras"
    if not config_file.is_file():
        raise RunError(f"{folder}: no config.json — not a FakeLens run folder (train one with `python -m train`)")
    if not model_file.is_file():
        raise RunError(f"{folder}: no model.keras — the training run did not finish; run `python -m train` again")
    try:
        summary = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{config_file}: not valid JSON ({err}) — the run folder is damaged; retrain") from None
    try:
        config = TrainConfig.from_dict(summary["config"])
        if not isinstance(summary["data"]["path"], str):  # where export_run finds the training data
            raise TypeError("data.path is not a string")
    except (KeyError, TypeError, ValueError) as err:
        raise RunError(f"{config_file}: config from an incompatible FakeLens version "
                       f"({err.__class__.__name__}: {err}) — retrain with this version") from None
    try:
        model = tf_keras.models.load_model(model_file, compile=False, safe_mode=True)
    except (OSError, ValueError) as err:
        raise RunError(f"{model_file}: cannot be loaded ({' '.join(str(err).split())[:200]}) — "
                       f"the file is damaged; run `python -m train` again") from None
    return Run(folder, config, summary, model)
