"""Every export kind runs as is in the standard clients phone apps load classifiers with —
MediaPipe Tasks' ImageClassifier (its own venv, `make clients-deps`) and the tflite-support Task
Library's ImageClassifier — and gives FakeLens' own scores on images already at the model's input
size (so the clients only apply the metadata's normalisation); with a baked threshold, the class
they rank first is FakeLens' decision at the original threshold.

In CI (FAKELENS_REQUIRE_CLIENTS=1, set by .ci/run) a missing MediaPipe venv fails instead of skipping.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from convert.metadata import read_model_info
from convert.runtime import TfliteModel
from tests.conftest import ROOT
from train.data import load_records, preprocess_records, select

MEDIAPIPE_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"
RUNNER = ROOT / "tests" / "client_scores.py"
FLOAT_TOLERANCE = 1e-5
N_IMAGES = 32


def client_python(client: str) -> str:
    if client == "task_library":
        return sys.executable  # tflite-support is in FakeLens' own venv
    if not MEDIAPIPE_PYTHON.is_file():
        if os.environ.get("FAKELENS_REQUIRE_CLIENTS"):
            pytest.fail(f"FAKELENS_REQUIRE_CLIENTS is set but {MEDIAPIPE_PYTHON} is missing: run `make clients-deps`")
        pytest.skip(f"MediaPipe's venv {MEDIAPIPE_PYTHON} is missing: `make clients-deps` creates it")
    return str(MEDIAPIPE_PYTHON)


@pytest.fixture(scope="module")
def exports(tiny_export, tiny_qat_export, tiny_ela_in_graph_export, tiny_baked_export,
            tiny_mirror_export, tiny_experts_export) -> dict[str, str]:
    """Every export kind: kind → .tflite path."""
    return {"float32": tiny_export["float32"]["path"], "int8": tiny_export["int8"]["path"],
            "int8_qat": tiny_qat_export["int8_qat"]["path"],
            "ela_in_graph_float32": tiny_ela_in_graph_export["float32"]["path"],
            "ela_in_graph_int8": tiny_ela_in_graph_export["int8"]["path"],
            "baked_float32": tiny_baked_export["float32"]["path"],
            "mirror_int8": tiny_mirror_export["int8"]["path"],
            "experts_float32": tiny_experts_export["float32"]["path"],
            "experts_int8_qat": tiny_experts_export["int8_qat"]["path"]}


@pytest.fixture(scope="module")
def inputs(exports, demo_data, tmp_path_factory) -> dict[str, dict]:
    """Per kind: the test images as FakeLens feeds them to the model (resized, ELA maps unless the
    ELA is in the graph), saved for the clients, and FakeLens' own probabilities on them."""
    records = select(load_records(demo_data), None, ["test"])[:N_IMAGES]
    folder = tmp_path_factory.mktemp("client_inputs")
    out = {}
    for kind, path in exports.items():
        images, *_ = preprocess_records(records, read_model_info(path).input_preprocessing, kind)
        np.save(folder / f"{kind}.npy", images)
        out[kind] = {"path": path, "images": str(folder / f"{kind}.npy"), "ours": TfliteModel(path).probabilities(images)}
    return out


@pytest.fixture(scope="module", params=["task_library", "mediapipe"])
def client(request, tmp_path_factory) -> tuple[str, dict, dict]:
    """(client name, kind → [{"scores": {category: score}, "top": category}] per image, `inputs`),
    one process of the client for every kind. The tests take only this fixture, so that a missing
    client skips them before any export is made."""
    name = request.param
    python = client_python(name)  # skips (or fails in CI) before the exports are made
    inputs = request.getfixturevalue("inputs")
    req = tmp_path_factory.mktemp("client_request") / "request.json"
    req.write_text(json.dumps({"models": [{"path": v["path"], "images": v["images"]} for v in inputs.values()]}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the client sees none of FakeLens
    proc = subprocess.run([python, str(RUNNER), name, str(req)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"
    by_path = json.loads(proc.stdout)
    return name, {kind: by_path[v["path"]] for kind, v in inputs.items()}, inputs


def client_probabilities(rows: list[dict], labels: tuple[str, ...]) -> np.ndarray:
    """The client's scores in FakeLens' label order (clients list categories by score)."""
    for row in rows:
        assert set(row["scores"]) == set(labels), f"the client reports {sorted(row['scores'])}, not {labels}"
    return np.array([[row["scores"][label] for label in labels] for row in rows])


def test_every_export_kind_gives_fakelens_scores(client):
    name, results, inputs = client
    assert set(results) == {"float32", "int8", "int8_qat", "ela_in_graph_float32", "ela_in_graph_int8",
                            "baked_float32", "mirror_int8", "experts_float32", "experts_int8_qat"}
    gaps = {}
    for kind, rows in results.items():
        ours = inputs[kind]["ours"]
        got = client_probabilities(rows, read_model_info(inputs[kind]["path"]).labels)
        assert got.shape == ours.shape == (N_IMAGES, 2)
        assert TfliteModel(inputs[kind]["path"]).output["dtype"] == np.float32  # int8's softmax is float too
        gaps[kind] = float(np.abs(got - ours).max())
    print(f"\n{name}: max |client - FakeLens| per kind: {gaps}")  # shown with pytest -s
    assert max(gaps.values()) <= FLOAT_TOLERANCE, f"{name}: max |client - FakeLens| {gaps}"


def test_baked_export_top_class_is_the_decision_at_the_original_threshold(client, request):
    name, results, inputs = client
    threshold = request.getfixturevalue("tiny_baked_export")["threshold"]
    info = read_model_info(inputs["baked_float32"]["path"])
    assert info.threshold == 0.5 and info.baked_threshold == threshold
    unbaked = inputs["float32"]["ours"][:, 1]
    fake = unbaked >= threshold  # FakeLens' decision with the unbaked model
    assert (fake != (unbaked >= 0.5)).sum() >= 2  # the baked threshold changes decisions on these images
    top = np.array([row["top"] == "fake" for row in results["baked_float32"]])
    clear = np.abs(inputs["baked_float32"]["ours"][:, 1] - 0.5) > 1e-4  # a tie's order is the client's own
    assert clear.sum() >= N_IMAGES - 2
    assert np.array_equal(top[clear], fake[clear]), f"{name}: the top class differs from FakeLens' decision"
