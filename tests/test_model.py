import h5py
import numpy as np
import pytest
import tf_keras
from PIL import Image

from ela.perturb import greyscale
from tests.conftest import error_lines, run_cli
from train.model import FEATURES_LAYER, GREY_LAYER, build_model, mobilenet_trainable_count, split_frozen_trunk


@pytest.mark.parametrize("unfreeze", [0, 10, 20])
def test_trainable_layer_count_matches_config(unfreeze):
    model = build_model(96, alpha=0.25, weights="none", unfreeze=unfreeze)
    assert mobilenet_trainable_count(model) == unfreeze
    assert model.output_shape == (None, 2)


def test_frozen_trunk_and_tail_compute_the_whole_model():
    model = build_model(96, alpha=0.25, weights="none", unfreeze=10, dropout=0.5)
    trunk, tail = split_frozen_trunk(model)
    assert trunk.output_shape == (None, 3, 3, 128)  # 512 channels × alpha 0.25
    x = np.random.RandomState(0).uniform(0, 255, (4, 96, 96, 3)).astype(np.float32)
    assert np.allclose(model.predict(x, verbose=0), tail.predict(trunk.predict(x, verbose=0), verbose=0), atol=1e-5)
    assert all(not layer.trainable for layer in trunk.layers[2:])


@pytest.mark.parametrize("grey", [False, True])
def test_imagenet_weights_load_through_keras_cache(imagenet_cache, grey):
    model = build_model(224, alpha=1.0, weights="imagenet", unfreeze=10, grey=grey)
    assert mobilenet_trainable_count(model) == 10
    with h5py.File(imagenet_cache, "r") as f:
        group = f["conv1"]["conv1"] if "conv1" in f["conv1"] else f["conv1"]
        expected = np.asarray(group[next(iter(group.keys()))])
    assert np.array_equal(model.get_layer("conv1").get_weights()[0], expected)
    assert np.array_equal(model.get_layer("conv_pw_13").get_weights()[0],
                          build_model(224, alpha=1.0, weights="imagenet").get_layer("conv_pw_13").get_weights()[0])


def test_grey_model_scores_a_photo_and_its_greyscale_copy_alike(tmp_path):
    """grey=True makes greyscale invariance exact up to PIL's rounding of the luma to integers,
    and survives saving; the colour model on the same photo does move."""
    colour = Image.fromarray(np.random.RandomState(1).randint(0, 256, (96, 96, 3), dtype=np.uint8))
    x = np.stack([np.asarray(colour), np.asarray(greyscale(colour))]).astype(np.float32)
    grey_model = build_model(96, alpha=0.25, weights="none", unfreeze=10, grey=True)
    assert mobilenet_trainable_count(grey_model) == 10 and not grey_model.get_layer(GREY_LAYER).trainable
    grey_model.save(tmp_path / "model.keras")
    loaded = tf_keras.models.load_model(tmp_path / "model.keras")
    for model in (grey_model, loaded):
        features = tf_keras.Model(model.input, model.get_layer(FEATURES_LAYER).output).predict(x, verbose=0)
        assert np.abs(features[0] - features[1]).max() < 0.01 * np.abs(features[0]).max()
    colour_model = build_model(96, alpha=0.25, weights="none", unfreeze=10)
    features = tf_keras.Model(colour_model.input, colour_model.get_layer(FEATURES_LAYER).output).predict(x, verbose=0)
    assert np.abs(features[0] - features[1]).max() > 0.1 * np.abs(features[0]).max()


def test_missing_weights_offline_is_a_one_line_error(tmp_path, demo_data):
    proc = run_cli("train", "--config", "demo", "--data", str(demo_data), "--out", str(tmp_path / "run"),
                   env={"HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / ".keras"),
                        "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert "mobilenet_1_0_224_tf_no_top.h5" in line and "--weights" in line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "model.keras").exists()
