"""Shared fixtures. The shared data lives at ../shared (read-only); tests that need it skip only
when it is absent, which never happens in CI. Keras' weight cache is seeded from the shared
ImageNet file, as it would be by a download."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from ela import ElaParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
IMAGENET_FILE = "mobilenet_1_0_224_tf_no_top.h5"


@pytest.fixture(scope="session")
def small_float_model() -> bytes:
    """A minimal image → 2-way softmax .tflite without metadata (a graph this small converts fast)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def classify(x):
        mean = tf.reduce_mean(x, axis=[1, 2, 3])[:, None] / 255.0
        return tf.nn.softmax(tf.concat([mean, 1 - mean], axis=1))

    return tf.lite.TFLiteConverter.from_concrete_functions([classify.get_concrete_function()], classify).convert()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.csv").is_file():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def imagenet_cache() -> Path:
    """~/.keras/models/ holding the ImageNet MobileNet file (copied from ../shared/weights)."""
    cache = Path.home() / ".keras" / "models"
    target = cache / IMAGENET_FILE
    if not target.is_file():
        source = SHARED / "weights" / IMAGENET_FILE
        if not source.is_file():
            pytest.skip("ImageNet weights are neither cached nor in ../shared/weights")
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    from train.demo_data import make_demo_dataset
    return make_demo_dataset(tmp_path_factory.mktemp("demo_data")).parent


TINY_ELA = ElaParams(quality=85, scale=20.0, resolution="resized")
TINY_CALIBRATION = 16  # images that calibrate the tiny run's integer exports


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_data, imagenet_cache) -> Path:
    """A small ELA model (ImageNet MobileNet at 96 px) trained for 2 epochs on the demo data,
    without augmentation or dropout. It must really learn (a random-init model's scores all sit
    at 0.5, where float32 and int8 decisions agree only by chance): val accuracy about 0.9."""
    from train.configs import get_config, with_fields
    from train.run import train_run
    cfg = with_fields(get_config("demo"), input_size=96, epochs=2, ela=TINY_ELA, batch_size=16, augment=None,
                      dropout=0.0)
    return train_run(cfg, demo_data, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def tiny_export(tiny_run) -> dict:
    """float32 and int8 exports of the tiny run, with the conversion report."""
    from convert.export import export_run
    reports = export_run(tiny_run, variants=("float32", "int8"), check_images=24, calibration_size=TINY_CALIBRATION)
    return {r["variant"]: r for r in reports}


@pytest.fixture(scope="session")
def tiny_qat_export(tiny_run, tmp_path_factory) -> dict:
    """float32 and int8_qat (one epoch of quantisation-aware training) exports of the tiny run."""
    from convert.export import export_run
    reports = export_run(tiny_run, tmp_path_factory.mktemp("qat_export"), ("float32", "int8_qat"), check_images=24,
                         qat_epochs=1, calibration_size=TINY_CALIBRATION)
    return {r["variant"]: r for r in reports}


@pytest.fixture(scope="session")
def tiny_ela_in_graph_export(tiny_run, tmp_path_factory) -> dict:
    """float32 and int8 exports of the tiny run with the ELA in the graph (`--ela_in_graph`)."""
    from convert.export import export_run
    reports = export_run(tiny_run, tmp_path_factory.mktemp("ela_in_graph"), ("float32", "int8"), check_images=24,
                         ela_in_graph=True, calibration_size=TINY_CALIBRATION)
    return {r["variant"]: r for r in reports}


@pytest.fixture(scope="session")
def tiny_experts_run(tmp_path_factory, demo_data, imagenet_cache) -> Path:
    """A small RGB model with experts (one tail per fake source of the demo data: gan_faces,
    sd21_faces; ImageNet MobileNet at 96 px), 2 epochs without augmentation or dropout."""
    from train.configs import get_config, with_fields
    from train.run import train_run
    cfg = with_fields(get_config("demo"), input_size=96, epochs=2, batch_size=16, augment=None, dropout=0.0,
                      experts=True)
    return train_run(cfg, demo_data, tmp_path_factory.mktemp("runs") / "experts")


@pytest.fixture(scope="session")
def tiny_experts_export(tiny_experts_run, tmp_path_factory) -> dict:
    """float32 and int8_qat (one epoch) exports of the tiny experts run."""
    from convert.export import export_run
    reports = export_run(tiny_experts_run, tmp_path_factory.mktemp("experts_export"), ("float32", "int8_qat"),
                         check_images=24, qat_epochs=1, calibration_size=TINY_CALIBRATION)
    return {r["variant"]: r for r in reports}


@pytest.fixture(scope="session")
def tiny_mirror_export(tiny_run, tmp_path_factory) -> dict:
    """float32 and int8 exports of the tiny run, mirror-averaged (`--mirror_average`)."""
    from convert.export import export_run
    reports = export_run(tiny_run, tmp_path_factory.mktemp("mirror"), ("float32", "int8"), check_images=24,
                         calibration_size=TINY_CALIBRATION, mirror_average=True)
    return {r["variant"]: r for r in reports}


@pytest.fixture(scope="session")
def tiny_baked_export(tiny_run, tiny_export, demo_data, tmp_path_factory) -> dict:
    """The float32 export of the tiny run with a threshold baked in, made by the command
    (`convert --threshold t --bake_threshold`); float32 only, as converting is the slow part and int8
    quantises the baked model like any other. t is the upper quartile of the float32 export's
    p(fake) on the test images, so that a good share of them is decided differently at t than at 0.5."""
    import json

    import numpy as np

    from convert.metadata import read_model_info
    from convert.runtime import TfliteModel
    from train.data import load_records, preprocess_records, select
    path = tiny_export["float32"]["path"]
    images, *_ = preprocess_records(select(load_records(demo_data), None, ["test"]),
                                    read_model_info(path).input_preprocessing, "test images")
    threshold = round(float(np.quantile(TfliteModel(path).probabilities(images)[:, 1], 0.75)), 4)
    out = tmp_path_factory.mktemp("baked")
    proc = run_cli("convert", "--run", str(tiny_run), "--out", str(out), "--variants", "float32",
                   "--threshold", str(threshold), "--bake_threshold", "--check_images", "24")
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = json.loads((out / "conversion_baked.json").read_text())
    return {"threshold": threshold, "stdout": proc.stdout, **{r["variant"]: r for r in reports}}


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `python -m <stage> ...` as a user would; returns the finished process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=600)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The lines of stderr that are FakeLens' own messages (TensorFlow's start-up chatter removed)."""
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]
