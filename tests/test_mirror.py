"""`convert --mirror_average`: the export scores the image and its mirror image and averages them
as logits, so a mirrored input gets the same score, in float32 and in int8, and the score is the
plain model's two logits averaged."""
from __future__ import annotations

import numpy as np
import pytest

from convert.metadata import read_model_card, read_model_info
from convert.runtime import TfliteModel
from convert.variants import FLOAT_TAIL_OPS
from train.data import load_records, preprocess_records, select


@pytest.fixture(scope="module")
def test_images(demo_data, tiny_export) -> np.ndarray:
    records = select(load_records(demo_data), None, ["test"])[:24]
    images, *_ = preprocess_records(records, read_model_info(tiny_export["float32"]["path"]).input_preprocessing,
                                    "test images")
    return images


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_a_mirrored_image_gets_exactly_the_same_score(tiny_mirror_export, test_images, variant):
    model = TfliteModel(tiny_mirror_export[variant]["path"])
    p = model.probabilities(test_images)[:, 1]
    p_mirrored = model.probabilities(test_images[:, :, ::-1])[:, 1]
    assert np.abs(p - p_mirrored).max() <= 1e-6
    assert np.ptp(p) > 0.05  # the scores differ between images: the invariance is not a constant output


def test_the_score_is_the_mean_of_the_two_logits_of_the_plain_model(tiny_export, tiny_mirror_export, test_images):
    plain = TfliteModel(tiny_export["float32"]["path"])
    expected = (logit(plain.probabilities(test_images)[:, 1]) + logit(plain.probabilities(test_images[:, :, ::-1])[:, 1])) / 2
    got = logit(TfliteModel(tiny_mirror_export["float32"]["path"]).probabilities(test_images)[:, 1])
    assert np.abs(got - expected).max() < 1e-3
    # the plain model is not mirror-invariant, so the average is a different model
    assert np.abs(logit(plain.probabilities(test_images)[:, 1]) - expected).max() > 1e-3


def test_the_mirror_export_is_named_described_and_integer_like_the_plain_one(tiny_mirror_export):
    for variant, report in tiny_mirror_export.items():
        info = read_model_info(report["path"])
        assert info.mirror_average and info.variant == variant and "_mirror_" in info.name
        assert "Mirror average" in read_model_card(report["path"]) and "--mirror_average" in read_model_card(report["path"])
    int8 = tiny_mirror_export["int8"]
    assert (int8["input_dtype"], int8["output_dtype"]) == ("uint8", "float32")
    assert set(int8["float_ops"]) == set(FLOAT_TAIL_OPS)  # reverse, concatenation and mean are int8 too
    assert int8["vs_float32"]["decision_agreement"] >= 0.9


def test_mirror_average_is_refused_with_quantisation_aware_training(tiny_run, tmp_path):
    from convert.export import export_run
    with pytest.raises(ValueError, match="--mirror_average cannot be combined with int8_qat"):
        export_run(tiny_run, tmp_path, ("float32", "int8_qat"), mirror_average=True)
    assert not list(tmp_path.iterdir())
