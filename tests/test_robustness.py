import numpy as np
import pytest
from PIL import Image

from benchmark.robustness import CONDITIONS, changed, parse_conditions, render_robustness
from ela import ElaParams, Preprocessing


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 200x160 PNG with smooth gradients and fine texture, so every perturbation has something to change."""
    yy, xx = np.mgrid[0:160, 0:200]
    rng = np.random.default_rng(0)
    rgb = np.stack([xx * 255 / 199, yy * 255 / 159, (xx + yy) % 32 * 8], -1) + rng.normal(0, 12, (160, 200, 3))
    path = tmp_path_factory.mktemp("robustness") / "photo.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def _mean_abs(a, b) -> float:
    return float(np.abs(np.asarray(a, np.int32) - np.asarray(b, np.int32)).mean())


def test_perturbations_change_the_image_as_named(photo):
    img = Image.open(photo).convert("RGB")
    jpeg95, jpeg50 = CONDITIONS["jpeg95"](img), CONDITIONS["jpeg50"](img)
    assert jpeg50.size == img.size and 0 < _mean_abs(img, jpeg95) < _mean_abs(img, jpeg50)
    assert CONDITIONS["downscale0.5"](img).size == (100, 80)
    blurred = np.asarray(CONDITIONS["blur1"](img), np.float64)
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(np.asarray(img, np.float64), axis=1)).mean()
    assert _mean_abs(img, CONDITIONS["reencode2"](img)) > _mean_abs(img, jpeg95)
    assert CONDITIONS["original"](img) is img


@pytest.mark.parametrize("prep", [Preprocessing(64), Preprocessing(64, ElaParams(90, "auto", "full"))])
def test_perturbed_preprocessing_runs_the_models_own_preprocessing_after(photo, prep):
    assert np.array_equal(changed(prep, CONDITIONS["original"]).load(photo), prep.load(photo))
    for condition in ("jpeg50", "downscale0.5"):
        x = changed(prep, CONDITIONS[condition]).load(photo)
        assert x.shape == (64, 64, 3) and x.dtype == np.uint8  # downscaled, then the usual resize
        assert not np.array_equal(x, prep.load(photo))


def test_conditions_flag_parsing():
    assert parse_conditions(["none"]) == []
    assert parse_conditions(["jpeg50", "original", "jpeg50"]) == ["jpeg50", "original"]
    with pytest.raises(ValueError, match="jpeg10.*use some of original, jpeg95"):
        parse_conditions(["jpeg10"])


def test_robustness_table_has_a_column_per_condition():
    rows = [{"model": "m", "set": "GAN", "condition": c, "n": 10, "accuracy": a, "auc": 0.9}
            for c, a in (("original", 0.8), ("jpeg50", 0.6))]
    text = render_robustness(rows)
    assert "| model | set | original | jpeg50 |" in text
    assert "| m | GAN (n=10) | 0.800 / 0.900 | 0.600 / 0.900 |" in text
    assert render_robustness([]) == ""
