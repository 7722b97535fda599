import json

import numpy as np
import pytest

from tests.conftest import error_lines, run_cli
from train.configs import CONFIGS, TrainConfig, get_config, with_fields
from train.data import balance, load_records, preprocess_records, select
from train.run import RunExistsError, train_run


def test_paper_configs_follow_the_paper():
    assert {"gan", "gan_ela", "gan_sd", "gan_sd_dropout", "gan_sd_ela", "demo"} <= set(CONFIGS)
    for name in ("gan", "gan_ela", "gan_sd", "gan_sd_dropout", "gan_sd_ela"):
        cfg = CONFIGS[name]
        assert cfg.optim.learning_rate == 1e-4 and cfg.model.alpha == 1.0 and cfg.model.input_size == 224 and cfg.model.weights == "imagenet"
        assert cfg.model.unfreeze == (20 if "ela" in name else 10)
        assert (cfg.data.ela is not None) == ("ela" in name)
        assert ("sd21_faces" in cfg.data.sources) == ("sd" in name)
    assert CONFIGS["gan_sd_dropout"].model.dropout == 0.5 and CONFIGS["gan_sd"].model.dropout == 0.0


def test_run_folder_is_self_describing_and_not_overwritten(tiny_run):
    summary = json.loads((tiny_run / "config.json").read_text())
    assert summary["config"]["data"]["ela"] == {"quality": 85, "scale": 20.0, "resolution": "resized"}
    assert "ela" not in json.dumps({k: v for k, v in summary["config"].items() if k != "data"})  # ELA once
    assert summary["model"]["trainable_mobilenet_layers"] == 10
    assert summary["result"]["n_train"] > 0
    history = (tiny_run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch") and len(history) == 3
    for name in ("model.keras", "checkpoints/best.weights.h5", "skipped.csv"):
        assert (tiny_run / name).is_file()
    assert any((tiny_run / "logs").rglob("events.out.tfevents.*"))
    cfg = get_config("demo")
    with pytest.raises(RunExistsError, match="--overwrite"):
        train_run(cfg, "unused", tiny_run)


def test_short_training_on_real_faces_beats_chance(shared_data, imagenet_cache, tmp_path):
    """The real 224/alpha-1.0 ImageNet path on a slice of the shared faces: held-out accuracy
    must be clearly above chance (the 95% Wilson interval's lower end above 0.5)."""
    from benchmark.metrics import accuracy
    from train.run_folder import load_run
    cfg = with_fields(get_config("gan"), max_per_source=50, epochs=3)
    run = train_run(cfg, shared_data, tmp_path / "gan_slice")
    test = balance(select(load_records(shared_data), cfg.data.sources, ["test"]))[:30] + \
        balance(select(load_records(shared_data), cfg.data.sources, ["test"]))[-30:]
    x, y, _, skipped = preprocess_records(test, cfg.preprocessing(), "test")
    assert not skipped and sorted(set(y.tolist())) == [0, 1]
    p_fake = load_run(run).model.predict(x.astype(np.float32), verbose=0)[:, 1]
    result = accuracy(y, p_fake, 0.5)
    assert result["ci95"][0] > 0.5, result


def test_cli_help_and_unknown_source(demo_data, tmp_path):
    proc = run_cli("train", "--help")
    assert proc.returncode == 0 and "--config" in proc.stdout and "--protocol" in proc.stdout
    proc = run_cli("train", "--config", "gan", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc)
    assert "nowhere" in line and "no such dataset" in line


def test_trunk_caching_trains_exactly_like_the_whole_model(demo_data, tmp_path):
    """Same seed, same data, same order: the cached-trunk run ends with the whole-model run's weights."""
    from train.run_folder import load_run
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", epochs=2, batch_size=16)
    cached = load_run(train_run(cfg, demo_data, tmp_path / "cached")).model
    whole = load_run(train_run(with_fields(cfg, cache_trunk=False), demo_data, tmp_path / "whole")).model
    trained = [layer.name for layer in cached.layers if layer.trainable and layer.weights]
    assert "real_fake" in trained and "conv_pw_13" in trained
    for name in trained:
        for a, b in zip(cached.get_layer(name).get_weights(), whole.get_layer(name).get_weights()):
            assert np.allclose(a, b, atol=1e-4), name
    assert not np.allclose(cached.get_layer("real_fake").get_weights()[0],
                           build_fresh_head(cfg).get_layer("real_fake").get_weights()[0])
    # optim.cache_float16 keeps the activations at half the memory: the same training up to their rounding
    half = load_run(train_run(with_fields(cfg, cache_float16=True), demo_data, tmp_path / "half")).model
    gaps = [np.abs(a - b).max() for name in trained
            for a, b in zip(cached.get_layer(name).get_weights(), half.get_layer(name).get_weights())]
    assert 0 < max(gaps) < 2e-3, max(gaps)


def test_a_bfloat16_fit_trains_near_float32_and_leaves_float32_behind(demo_data, tmp_path):
    """optim.precision=mixed_bfloat16: the tail computes in bfloat16 while it trains, on float32
    weights. The run's model is float32, the process-wide policy is float32 again afterwards,
    and the weights land near the float32 run's without being equal (bfloat16 rounds)."""
    import tf_keras
    from train.model import train_precision
    from train.run_folder import load_run
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", epochs=2, batch_size=16)
    exact = load_run(train_run(cfg, demo_data, tmp_path / "float32")).model
    run = train_run(with_fields(cfg, precision="mixed_bfloat16"), demo_data, tmp_path / "bfloat16")
    rounded = load_run(run).model
    assert tf_keras.mixed_precision.global_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in rounded.layers} == {"float32"}
    assert json.loads((run / "config.json").read_text())["config"]["optim"]["precision"] == "mixed_bfloat16"
    trained = [layer.name for layer in exact.layers if layer.trainable and layer.weights]
    gaps = [np.abs(a - b).max() for name in trained
            for a, b in zip(exact.get_layer(name).get_weights(), rounded.get_layer(name).get_weights())]
    assert 0 < max(gaps) < 2e-3, max(gaps)
    with pytest.raises(RuntimeError), train_precision("mixed_bfloat16"):
        assert tf_keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        raise RuntimeError("a failed fit")
    assert tf_keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        with_fields(cfg, precision="float16")


def build_fresh_head(cfg):
    from train.model import build_model
    from train.run_folder import seed_everything
    seed_everything(cfg.seed)
    return build_model(cfg.model.input_size, cfg.model.alpha, cfg.model.weights, cfg.model.unfreeze, cfg.model.dropout)


def test_fakelens_recipe_trains_on_a_plain_folder_with_its_own_sources(tmp_path):
    """A user's own photos: real/ and fake/<generator>/, no manifest, no shared source names."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(24):
        for folder in ("real/phone", "fake/midjourney"):
            path = tmp_path / "mine" / folder / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    proc = run_cli("train", "--config", "fakelens", "--data", str(tmp_path / "mine"), "--out", str(tmp_path / "run"),
                   "--alpha", "0.25", "--input_size", "32", "--weights", "none", "--epochs", "1", "--views", "2",
                   "--unfreeze", "10", "--batch_size", "8",
                   "--set", 'data.source_weights=["midjourney=2","gan_faces=0.5"]')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "source_weights name gan_faces, which this run does not train on; ignored" in proc.stdout
    summary = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["config"]["data"]["sources"] == ["midjourney", "phone"]
    assert summary["config"]["data"]["source_weights"] == ["midjourney=2", "gan_faces=0.5"]
    assert set(summary["data"]["counts"]) <= {f"{s}/{split}" for s in ("midjourney", "phone") for split in ("train", "val")}
    assert summary["config"]["data"]["augment"]["views"] == 2 and set(summary["result"]["timing"]) == {
        "decode_val_s", "decode_augment_train_s", "trunk_s", "fit_s"}


# config.json's "config" of a run trained before the groups existed (runs/paper/gan_as_is), as written then.
FLAT_GAN = {"alpha": 1.0, "augment": None, "balance": False, "batch_size": 32, "cache_trunk": True, "calibration_size": 100,
            "description": "Paper model 1: real + GAN faces, last 10 layers unfrozen", "dropout": 0.0, "ela": None,
            "epochs": 10, "exclude_sources": [], "input_size": 224, "learning_rate": 0.0001,
            "lr_schedule": "constant", "max_per_source": None, "name": "gan",
            "preprocessing": {"ela": None, "format_control": None, "input_size": 224, "resize": "bilinear",
                              "schema_version": 1},
            "protocol": "as_is", "seed": 0, "sources": ["real_ciplab", "gan_faces"], "unfreeze": 10,
            "weights": "imagenet"}


def test_a_flat_config_json_from_before_the_groups_still_loads_and_resumes():
    from train.run import resume_key
    cfg = TrainConfig.from_dict(FLAT_GAN)
    assert cfg == get_config("gan") and TrainConfig.from_dict(cfg.to_dict()) == cfg
    grouped = cfg.to_dict()
    assert set(grouped) == {"name", "description", "seed", "data", "model", "optim"}
    assert grouped["optim"]["learning_rate"] == 1e-4 and grouped["model"]["unfreeze"] == 10
    assert "calibration_size" not in json.dumps(grouped)  # convert's setting now (convert --calibration_size)
    ela = with_fields(get_config("gan_ela"), **{"ela.resolution": "resized"}).to_dict()
    assert json.dumps(ela).count('"quality"') == 1  # ELA written once, as data.ela
    backup = {"config": FLAT_GAN, "data": {"path": "/d"}, "training": {"global_batch_size": 32, "learning_rate": 1e-4}}
    now = dict(backup, config=grouped)
    assert resume_key(backup) == resume_key(now)
    assert resume_key(backup) != resume_key(dict(now, config=dict(grouped, seed=1)))


def test_grouped_set_items_and_their_shortcuts_are_one_override():
    from train.configs import override, set_items
    base = get_config("fakelens")
    cfg = override(base, ["optim.learning_rate=3e-4", "model.unfreeze=25", "data.augment.grey_p=0.05",
                          "sources=[\"gan_faces\"]", 'data.source_weights=["gan_faces=0.5"]'])
    assert cfg.optim.learning_rate == 3e-4 and cfg.model.unfreeze == 25 and cfg.data.augment.grey_p == 0.05
    assert cfg.data.sources == ("gan_faces",) and cfg.optim.epochs == base.optim.epochs == 20
    assert override(base, ["learning_rate=3e-4"]) == override(base, ["optim.learning_rate=3e-4"]) \
        == with_fields(base, learning_rate=3e-4)
    items = set_items(cfg)
    assert "optim.learning_rate=0.0003" in items and "model.unfreeze=25" in items
    assert 'data.source_weights=["gan_faces=0.5"]' in items and cfg.data.source_weights == ("gan_faces=0.5",)
    assert all(item.split(".")[0] in ("data", "model", "optim") or item.startswith("seed=") for item in items)
    assert override(base, items) == cfg and set_items(base) == []
    with pytest.raises(ValueError, match="OptimConfig has no field 'unfreeze'"):
        override(base, ["optim.unfreeze=3"])
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        override(base, ["optim.learning_rate=0"])
