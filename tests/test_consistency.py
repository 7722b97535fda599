"""The consistency loss between two augmented views (train/consistency.py) and paired training."""
import json
import math

import numpy as np
import pytest

from train.configs import get_config, with_fields


def js_numpy(p, q):
    m = (p + q) / 2
    return 0.5 * (np.sum(p * np.log(p / m)) + np.sum(q * np.log(q / m)))


def test_js_divergence_is_zero_for_equal_scores_symmetric_and_bounded():
    from train.consistency import js_divergence
    p = np.array([[0.1, 0.9], [0.5, 0.5], [0.999, 0.001]], np.float32)
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.001, 0.999]], np.float32)
    d = js_divergence(p, q).numpy()
    assert d[1] == pytest.approx(0.0, abs=1e-7)
    assert d[0] == pytest.approx(js_numpy(p[0], q[0]), rel=1e-5)
    assert np.allclose(d, js_divergence(q, p).numpy())
    assert 0.68 < d[2] <= math.log(2)  # opposite confident verdicts: near the bound


def test_paired_loss_is_cross_entropy_plus_weighted_disagreement():
    from train.consistency import paired_loss
    y = np.array([1, 0])
    same = np.array([[[0.2, 0.8], [0.2, 0.8]], [[0.7, 0.3], [0.7, 0.3]]], np.float32)
    ce = -np.log([0.8, 0.7])
    assert np.allclose(paired_loss(5.0)(y, same).numpy(), ce, atol=1e-6)  # equal views: plain cross-entropy
    apart = np.array([[[0.2, 0.8], [0.6, 0.4]], [[0.7, 0.3], [0.7, 0.3]]], np.float32)
    mean_ce = np.array([-(np.log(0.8) + np.log(0.4)) / 2, -np.log(0.7)])
    loss = paired_loss(5.0)(y, apart).numpy()
    assert loss[0] == pytest.approx(mean_ce[0] + 5.0 * js_numpy(apart[0, 0], apart[0, 1]), rel=1e-5)
    assert loss[1] == pytest.approx(mean_ce[1], rel=1e-5)


def test_paired_batches_show_each_image_in_views_2e_and_2e_plus_1():
    from train.run import epoch_batches
    views = np.arange(3 * 10, dtype=np.float32).reshape(3, 10, 1)  # view v of image i holds 10 v + i
    y, w = np.arange(10) % 2, np.ones(10, np.float32)
    for epoch, (a, b) in enumerate([(0, 1), (2, 0), (1, 2)]):
        ((x, labels, _),) = list(epoch_batches(views, y, w, 10, 0, epoch, epoch + 1, paired=True).as_numpy_iterator())
        image = x[:, 0, 0] - 10 * a
        assert sorted(image.tolist()) == list(range(10)) and np.array_equal(labels, y[image.astype(int)])
        assert np.array_equal(x[:, 1, 0] - 10 * b, image)
    plain = list(epoch_batches(views, y, w, 10, 0, 1, 2).as_numpy_iterator())[0][0]
    assert plain.shape == (10, 1) and np.array_equal(np.sort(plain[:, 0]), np.arange(10, 20))


def test_a_consistency_run_trains_and_reports_the_plain_validation_loss(demo_data, tmp_path):
    """Validation shows each image twice, so the consistency term is 0 there: the run's val_loss
    is the weighted cross-entropy of the saved model's own validation scores."""
    from train.data import load_records, preprocess_records, select
    from train.run import loss_weights, train_run
    from train.run_folder import load_run
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", epochs=2, batch_size=16,
                      consistency=2.0)
    run = train_run(cfg, demo_data, tmp_path / "paired")
    summary = json.loads((run / "config.json").read_text())
    assert summary["config"]["optim"]["consistency"] == 2.0
    assert (run / "history.csv").read_text().splitlines()[0].split(",") == [
        "epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    val = select(load_records(demo_data), cfg.data.sources or sorted({r.source for r in load_records(demo_data)}),
                 ["val"])
    x, y, _, skipped = preprocess_records(val, cfg.preprocessing(), "val")
    assert not skipped
    p = load_run(run).model.predict(x.astype(np.float32), verbose=0)
    ce = -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))
    assert summary["result"]["val_loss"] == pytest.approx(float(np.mean(loss_weights(val, cfg.data) * ce)), rel=1e-3)


def test_a_negative_consistency_weight_is_refused():
    with pytest.raises(ValueError, match="consistency is a loss weight"):
        with_fields(get_config("demo"), consistency=-1.0)
