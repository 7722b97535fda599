import base64
import io
import json
import math

import numpy as np
import pytest
import tf_keras
from PIL import Image

from benchmark.gradcam import CATEGORIES, gallery, grad_cam, heat_outside_centre, last_conv_layers
from benchmark.html_report import write_html
from train.configs import get_config, with_fields
from train.data import load_records
from train.model import build_model


def brightness_model(size: int = 48) -> tf_keras.Model:
    """p(fake) rises with mean brightness: the fake evidence sits exactly where the image is bright."""
    image = tf_keras.Input((size, size, 3))
    bright = tf_keras.layers.Conv2D(1, 1, activation="relu", kernel_initializer="ones", name="bright")(image)
    coarse = tf_keras.layers.AveragePooling2D(4, name="coarse")(bright)  # a 12x12 map to upsample
    pooled = tf_keras.layers.GlobalAveragePooling2D()(coarse)
    head = tf_keras.layers.Dense(2, activation="softmax", name="real_fake")
    model = tf_keras.Model(image, head(pooled))
    head.set_weights([np.array([[-1.0, 1.0]], np.float32), np.zeros(2, np.float32)])
    return model


def decode_png(b64: str) -> Image.Image:
    data = base64.b64decode(b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


def test_grad_cam_finds_the_evidence_where_it_is():
    image = np.zeros((48, 48, 3), np.uint8)
    image[:12, :12] = 255  # the only bright patch: top left
    model = brightness_model()
    assert [layer.name for layer in last_conv_layers(model)] == ["coarse"]
    heat = grad_cam(model, image, class_index=1)
    assert heat.shape == (48, 48) and heat.max() == pytest.approx(1.0) and heat.min() >= 0.0
    assert heat[:12, :12].mean() > 0.9 and heat[24:, 24:].max() == 0.0
    assert heat_outside_centre(heat) > 0.95
    # nothing in the image argues for "real": no region raises its score
    assert not grad_cam(model, image, class_index=0).any()


def test_grad_cam_on_the_mobilenet_classifier():
    tf_keras.utils.set_random_seed(0)
    model = build_model(input_size=96, alpha=0.25, weights="none")
    assert [layer.name for layer in last_conv_layers(model)] == ["conv_pw_13_relu"]
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3)).astype(np.uint8)
    called = int(model(image[None].astype(np.float32))[0].numpy().argmax())  # this class has evidence
    heat = grad_cam(model, image, class_index=called)
    assert heat.shape == (96, 96)
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert np.unique(heat).size > 10


def test_grad_cam_rejects_a_model_without_the_two_way_head():
    image = tf_keras.Input((32, 32, 3))
    model = tf_keras.Model(image, tf_keras.layers.Dense(3)(tf_keras.layers.GlobalAveragePooling2D()(image)))
    with pytest.raises(ValueError, match="2-way Dense"):
        grad_cam(model, np.zeros((32, 32, 3), np.uint8))


def test_heat_outside_centre_on_known_maps():
    centre = np.zeros((64, 64))
    centre[16:48, 16:48] = 1.0
    assert heat_outside_centre(centre) == pytest.approx(0.0)
    assert heat_outside_centre(np.ones((64, 64))) == pytest.approx(0.75)
    corner = np.zeros((64, 64))
    corner[:8, :8] = 1.0
    assert heat_outside_centre(corner) == pytest.approx(1.0)
    assert heat_outside_centre(np.ones((60, 60)), centre=0.8) == pytest.approx(1 - 48 * 48 / 3600)
    assert math.isnan(heat_outside_centre(np.zeros((8, 8))))


def categorised(records, scores, threshold):
    """The expected category of each scored record (fake = positive)."""
    out = {}
    for r in records:
        if r.path in scores:
            called_fake = scores[r.path] >= threshold
            out[str(r.path)] = next(k for k, (_, fake, called) in CATEGORIES.items()
                               if fake == (r.label == "fake") and called == called_fake)
    return out


def check_gallery(g, records, scores, threshold, per_cell, image_keys, size):
    expected = categorised(records, scores, threshold)
    assert list(g["categories"]) == list(CATEGORIES)
    json.dumps(g, allow_nan=False)
    for key, cat in g["categories"].items():
        assert cat["n_available"] == sum(1 for c in expected.values() if c == key)
        assert len(cat["items"]) == min(per_cell, cat["n_available"])
        assert cat["heat_towards"] == ("fake" if CATEGORIES[key][2] else "real")
        for item in cat["items"]:
            assert expected[item["path"]] == key
            assert set(item["images"]) == image_keys
            for b64 in item["images"].values():
                png = decode_png(b64)
                assert png.size == (size, size) and png.mode == "RGB"
            share = item["heat_outside_centre"]
            assert share is None or 0.0 <= share <= 1.0
        shares = [i["heat_outside_centre"] for i in cat["items"] if i["heat_outside_centre"] is not None]
        summary = (cat["heat_outside_centre_mean"], cat["heat_outside_centre_median"])
        assert summary == ((pytest.approx(np.mean(shares)), pytest.approx(np.median(shares))) if shares else (None, None))


def test_gallery_of_an_ela_run_shows_the_ela_map_and_the_photo(tiny_run, demo_data, tmp_path):
    records = load_records(demo_data)
    scores = {r.path: (0.9 if i % 2 else 0.1) for i, r in enumerate(records[:-5])}  # the last 5 unscored
    g = gallery(tiny_run, records, scores, threshold=0.5, per_cell=2, seed=1)
    assert g["ela"] is True and g["input_size"] == 96 and g["threshold"] == 0.5
    check_gallery(g, records, scores, 0.5, 2, {"input", "rgb"}, 96)
    item = g["categories"]["true_positive"]["items"][0]
    assert item["images"]["input"] != item["images"]["rgb"]
    assert gallery(tiny_run, records, scores, threshold=0.5, per_cell=2, seed=1) == g  # seeded sample

    page = write_html({"data": str(demo_data), "models": {}, "gradcam": {"tiny_float32": g}},
                      tmp_path / "report.html").read_text()
    n_items = sum(len(c["items"]) for c in g["categories"].values())
    assert page.count("<img ") == 2 * n_items and "true positive: fake called fake" in page


def test_gallery_of_a_plain_run_shows_the_model_input(demo_data, tmp_path):
    """A run folder written by hand: an untrained RGB model with its config."""
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none")
    run = tmp_path / "plain"
    run.mkdir()
    tf_keras.utils.set_random_seed(0)
    build_model(input_size=64, alpha=0.25, weights="none").save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "data": {"path": str(demo_data)}}))
    records = load_records(demo_data)
    scores = {r.path: 0.3 + 0.4 * (i % 3 == 0) for i, r in enumerate(records)}
    g = gallery(run, records, scores, threshold=0.5, per_cell=3)
    assert g["ela"] is False and g["model"] == "plain"
    check_gallery(g, records, scores, 0.5, 3, {"input"}, 64)
