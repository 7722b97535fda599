"""Content balance (train/content_balance.py): weights under which a thumbnail cannot tell the classes apart."""
import json

import numpy as np
import pytest

from train.content_balance import THUMBNAIL, effective_share, out_of_fold_p_fake, reweight, thumbnails
from train.metrics import roc_auc


def test_a_thumbnail_keeps_the_layout_and_drops_the_fine_texture():
    rng = np.random.default_rng(0)
    layout = np.zeros((224, 224, 3), np.uint8)
    layout[:, 112:] = 200  # a dark left half and a bright right half: content
    noisy = np.clip(layout + rng.integers(-40, 41, layout.shape), 0, 255).astype(np.uint8)  # plus pixel noise
    thumb = thumbnails(noisy[None])[0].astype(float)
    assert thumb.shape == (224, 224, 3)
    assert thumb[:, :96].mean() < 30 and thumb[:, 128:].mean() > 170  # the halves are still there
    assert thumb[:, 128:].std() < 0.25 * noisy[:, 128:].astype(float).std()  # the noise is not


def test_reweighting_raises_reals_that_look_fake_and_keeps_each_source_total():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    sources = ["cam"] * 4 + ["gen"] * 4
    p_fake = np.array([0.05, 0.5, 0.9, 0.99, 0.01, 0.5, 0.7, 0.95])
    base = np.array([1.0] * 4 + [0.5] * 4)
    w = reweight(p_fake, y, sources, base, clip=5.0)
    assert w[:4].sum() == pytest.approx(4.0) and w[4:].sum() == pytest.approx(2.0)
    assert w[0] < w[1] < w[2] <= w[3]  # the more a real photo's content looks fake, the more it counts
    assert w[4] > w[5] > w[6] > w[7]  # the more a fake's content looks real, the more it counts
    assert w[3] / w[0] == pytest.approx(25.0)  # clipped at 5 each way, so at most 25x within a source
    assert effective_share(w, sources)["cam"] < 1.0 == effective_share(base, sources)["gen"]


def test_weighted_auc_counts_each_pair_by_its_weights_and_moves_with_them():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    score = np.round(y + rng.normal(0, 1.0, 200), 1)  # rounded: many ties
    w = rng.uniform(0.1, 3.0, 200)
    pos, neg = y == 1, y == 0
    pairs = np.outer(w[pos], w[neg])
    wins = (score[pos][:, None] > score[neg][None, :]) + 0.5 * (score[pos][:, None] == score[neg][None, :])
    assert roc_auc(y, score, w) == pytest.approx((pairs * wins).sum() / pairs.sum(), abs=1e-12)
    assert roc_auc(y, score) == pytest.approx(wins.mean(), abs=1e-12)
    hard = np.where(y == 1, score < 0.5, score > 0.5).astype(float) + 0.01  # weight on the confusable images
    assert roc_auc(y, score, hard) < 0.5 < roc_auc(y, score)


def test_out_of_fold_content_scores_find_a_content_cue_and_are_reproducible():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 60)
    features = rng.normal(0, 1, (120, 16))
    features[:, 3] += 3.0 * y  # one content feature that the fakes own
    p = out_of_fold_p_fake(features, y, np.ones(120), seed=0)
    assert roc_auc(y, p) > 0.8
    assert np.array_equal(p, out_of_fold_p_fake(features, y, np.ones(120), seed=0))
    noise_only = out_of_fold_p_fake(rng.normal(0, 1, (120, 16)), y, np.ones(120), seed=0)
    assert abs(roc_auc(y, noise_only) - 0.5) < 0.2  # nothing to find: no image scores itself


def test_content_balance_is_a_clip_of_at_least_one():
    from train.configs import get_config, with_fields
    with pytest.raises(ValueError, match="content_balance"):
        with_fields(get_config("fakelens"), content_balance=0.5)
    assert with_fields(get_config("fakelens"), content_balance=5).data.content_balance == 5


def test_a_content_balanced_run_reports_what_content_tells_and_trains(demo_data, tmp_path):
    """The content regression reads features of the run's own start weights (here a random-init
    MobileNet 0.25 at 96 px: the plumbing, not the quality of its features)."""
    from train.configs import get_config, with_fields
    from train.run import train_run
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=96, weights="none", epochs=1, batch_size=16,
                      augment=None, content_balance=5.0)
    summary = json.loads((train_run(cfg, demo_data, tmp_path / "run") / "config.json").read_text())
    report = summary["data"]["content_balance"]
    assert report["clip"] == 5.0 and report["thumbnail_px"] == THUMBNAIL
    assert 0.0 <= report["weighted_content_auc"] <= 1.0 and 0.0 <= report["content_auc"] <= 1.0
    assert set(report["effective_share"]) == set(summary["config"]["data"]["sources"])
    assert "content_balance_s" in summary["result"]["timing"]
    # experts: one regression per tail, within the images that tail trains on (every real + its fakes)
    experts = json.loads((train_run(with_fields(cfg, experts=True), demo_data, tmp_path / "experts")
                          / "config.json").read_text())["data"]["content_balance"]
    assert set(experts) == {"gan_faces", "sd21_faces"}
    for source, tail in experts.items():
        assert set(tail["effective_share"]) == {"real_ciplab", "real_lfw", source} and tail["clip"] == 5.0
