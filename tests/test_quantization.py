import dataclasses

import numpy as np
import pytest

from benchmark.metrics import accuracy, roc_auc
from benchmark.quantization import quantization_rows, reference_for, render_quantization
from benchmark.tables import TEST_SETS
from convert.metadata import read_model_info
from convert.runtime import TfliteModel
from train.data import load_records, preprocess_records


def test_quantised_export_is_compared_with_its_float32_image_by_image(tiny_export, demo_data):
    infos = {info.name: info for info in (read_model_info(tiny_export[v]["path"]) for v in ("float32", "int8"))}
    gan = next(ts for ts in TEST_SETS if ts.name == "GAN").records(load_records(demo_data))
    x, y, kept, _ = preprocess_records(gan, infos["tiny_float32"].input_preprocessing, "test")
    direct = {name: TfliteModel(tiny_export[info.variant]["path"]).probabilities(x)[:, 1].astype(np.float64)
              for name, info in infos.items()}
    scores = {name: {r.path: float(p) for r, p in zip(kept, direct[name])} for name in infos}

    rows = quantization_rows(infos, scores, {"GAN": gan})
    (row,) = rows  # only the int8 export is quantised; only GAN was given
    assert (row["model"], row["reference"], row["variant"]) == ("tiny_int8", "tiny_float32", "int8")
    a, b = direct["tiny_float32"], direct["tiny_int8"]
    assert row["n"] == len(kept) and row["agreement"] == pytest.approx(np.mean((a >= 0.5) == (b >= 0.5)))
    assert row["mean_abs_diff"] == pytest.approx(np.abs(a - b).mean())
    assert row["max_abs_diff"] == pytest.approx(np.abs(a - b).max())
    acc = lambda p: accuracy(y, p, 0.5)["accuracy"]  # noqa: E731
    assert row["delta_acc_points"] == pytest.approx(100 * (acc(b) - acc(a)))
    assert row["delta_auc_points"] == pytest.approx(100 * (roc_auc(y, b) - roc_auc(y, a)))
    worst = row["worst"]
    assert len(worst) == 5 and worst[0]["p_float"] == pytest.approx(a[np.argmax(np.abs(a - b))])
    gaps = [abs(w["p_float"] - w["p_quant"]) for w in worst]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] == pytest.approx(row["max_abs_diff"])
    assert "| tiny_int8 | tiny_float32 | GAN |" in render_quantization(rows)


def test_pairing_needs_the_same_run_and_kind(tiny_export):
    float32, int8 = (read_model_info(tiny_export[v]["path"]) for v in ("float32", "int8"))
    assert reference_for("q", {"f": float32, "q": int8}) == "f"
    assert reference_for("q", {"f": dataclasses.replace(float32, ela_in_graph=True), "q": int8}) is None
    other_run = dataclasses.replace(float32, run="another")
    assert reference_for("q", {"f": other_run, "q": int8}) is None
    assert quantization_rows({"q": int8}, {"q": {}}, {}) == []
