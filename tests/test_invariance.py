"""Invariance probes: each transform does what it says, flip rates and per-source shares are
counted right on a model whose behaviour is known, and the --max_flip gate reads them."""
import numpy as np
import pytest
from PIL import Image

from benchmark.invariance import (PROBES, invariance_rows, max_flip_failures, parse_probes, probe_change,
                                  render_invariance)
from benchmark.scores import score_images
from convert.metadata import ModelInfo
from ela import Preprocessing
from train.data import Record, file_sha256


@pytest.fixture
def colour_photo():
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).resize((120, 100), Image.BICUBIC)
    return Image.fromarray(np.clip(np.asarray(coarse, float) + rng.normal(0, 4, (100, 120, 3)), 0, 255)
                           .astype(np.uint8))


def test_each_probe_changes_what_it_names_and_nothing_else(colour_photo):
    img, pixels = colour_photo, np.asarray(colour_photo)
    assert np.array_equal(np.asarray(PROBES["png"](img)), pixels)  # lossless: the same pixels
    q95, q75 = np.asarray(PROBES["jpeg95_444"](img), int), np.asarray(PROBES["jpeg75_420"](img), int)
    assert 0 < np.abs(q95 - pixels).mean() < np.abs(q75 - pixels).mean()
    assert PROBES["scale0.75"](img).size == (90, 75) and PROBES["scale1.5"](img).size == (180, 150)
    crop = PROBES["crop0.9"](img)
    assert crop.size == (108, 90) and np.array_equal(np.asarray(crop), pixels[5:95, 6:114])  # centred, not resampled
    assert np.array_equal(np.asarray(PROBES["flip"](img)), pixels[:, ::-1])
    grey = np.asarray(PROBES["grey"](img))
    assert np.array_equal(grey[..., 0], grey[..., 2]) and not np.array_equal(pixels[..., 0], pixels[..., 2])


def test_probe_flag_parsing():
    assert parse_probes(["none"]) == []
    assert parse_probes(["grey", "png", "grey"]) == ["grey", "png"]
    with pytest.raises(ValueError, match="unknown invariance probe"):
        parse_probes(["sepia"])
    assert parse_probes(["crop0.5", "scale2", "grey"]) == ["crop0.5", "scale2", "grey"]
    for bad in ("crop1.5", "crop0", "cropx", "scale0", "scale-1", "scaleinf", "scalenan"):
        with pytest.raises(ValueError, match="cropF"):
            parse_probes([bad])


def test_parameterised_probes_crop_and_rescale_like_the_named_ones(colour_photo):
    img, pixels = colour_photo, np.asarray(colour_photo)
    assert np.array_equal(np.asarray(probe_change("crop0.90")(img)), np.asarray(PROBES["crop0.9"](img)))
    close_up = probe_change("crop0.5")(img)  # the centre half of each side, at native resolution
    assert close_up.size == (60, 50) and np.array_equal(np.asarray(close_up), pixels[25:75, 30:90])
    assert probe_change("scale2")(img).size == (240, 200)


class ColourDetector:
    """Calls an image fake when it has colour (channels differ), real when it is grey: the
    'colour = fake' shortcut, whose flips under the probes are known exactly."""

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        colour = (np.abs(x[..., 0].astype(int) - x[..., 2]).mean(axis=(1, 2)) > 1).astype(float)
        return np.stack([1 - colour, colour], axis=1)


def test_flip_rates_and_fake_shares_of_a_colour_shortcut(tmp_path, colour_photo):
    records = []
    for i, (source, label) in enumerate([("real_a", "real")] * 3 + [("fake_b", "fake")] * 2):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.roll(np.asarray(colour_photo), i, axis=1)).save(path)
        records.append(Record(path, label, source, "test", file_sha256(path)))
    info = ModelInfo(name="colour", preprocessing=Preprocessing(32))
    model = ColourDetector()
    prep = info.preprocessing
    original = {"colour": score_images(model, {r.path: prep.load(r.path) for r in records})}
    rows = invariance_rows({"colour": (info, model)}, {"all": records}, records, ["png", "grey"], original)
    by = {(r["kind"], r["group"], r["probe"]): r for r in rows}
    assert by["set", "all", "png"]["flip_rate"] == 0.0 and by["set", "all", "grey"]["flip_rate"] == 1.0
    real_grey = by["source", "real_a", "grey"]
    assert real_grey["n"] == 3 and real_grey["label"] == "real"
    assert real_grey["fake_share_original"] == 1.0 and real_grey["fake_share"] == 0.0
    assert by["source", "fake_b", "png"]["fake_share"] == 1.0
    text = render_invariance(rows)
    assert "| colour | all (n=5) | 0.0% | 100.0% |" in text
    assert "| colour | real_a (real, n=3) | 1.000 | 1.000 | 0.000 |" in text
    assert max_flip_failures(rows, 0.03) == ["colour on all: probe grey flips 100.0% of decisions (allowed: 3.0%)"]
    assert max_flip_failures(rows, 1.0) == []
    # grey changes every verdict: all five are unsteady, the three reals wrongly called fake among them
    assert by["steadiness", "all test images", "any"] == {
        "model": "colour", "variant": info.variant, "run": info.run, "probe": "any", "kind": "steadiness",
        "group": "all test images", "n": 5, "n_unsteady": 5, "wrong_steady": 0, "wrong_unsteady": 3}
    assert "| colour | 5 | 5 (100.0%) | 3 (60.0%) | 0 (–) | 3 of 3 (100.0%) |" in text
    png_only = invariance_rows({"colour": (info, model)}, {"all": records}, records, ["png"], original)
    assert [r for r in png_only if r["kind"] == "steadiness"][0] == dict(
        by["steadiness", "all test images", "any"], n_unsteady=0, wrong_steady=3, wrong_unsteady=0)
