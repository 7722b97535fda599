"""Experts (`model.experts`): one tail per fake source behind the shared frozen trunk, each trained
exactly as a held-out run of the other generators would train it, joined into one classifier that
calls a photo fake when any tail does; Grad-CAM, QAT and the exports handle the joined graph."""
import json

import numpy as np
import pytest

from benchmark.gradcam import grad_cam, last_conv_layers
from convert.runtime import TfliteModel
from train.configs import get_config, with_fields
from train.run import train_run
from train.run_folder import load_run

SOURCES = ["gan_faces", "sd21_faces"]  # the demo data's training fakes


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory):
    """The demo recipe (2 augmented views, dropout 0.5) at 64 px with random weights: experts, and
    the two held-out runs whose tails they must equal."""
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", epochs=2, batch_size=16)
    root = tmp_path_factory.mktemp("experts")
    return {"experts": load_run(train_run(with_fields(cfg, experts=True), demo_data, root / "experts")),
            **{kept: load_run(train_run(with_fields(cfg, exclude_sources=tuple(s for s in SOURCES if s != kept)),
                                        demo_data, root / kept)) for kept in SOURCES}}


def test_each_tail_trains_exactly_like_a_run_on_its_source_alone(runs):
    experts = runs["experts"]
    for source in SOURCES:
        alone = runs[source].model
        trained = [layer for layer in alone.layers if layer.trainable and layer.weights and layer.name != "real_fake"]
        assert len(trained) == 6  # the layers with weights among the demo config's last 10
        for layer in trained:
            for a, b in zip(layer.get_weights(), experts.model.get_layer(f"{source}__{layer.name}").get_weights()):
                assert np.array_equal(a, b), (source, layer.name)
        kernel, bias = alone.get_layer("real_fake").get_weights()
        margin_kernel, margin_bias = experts.model.get_layer(f"{source}__fake_logit").get_weights()
        assert np.allclose(margin_kernel, kernel[:, 1:] - kernel[:, :1]) and np.allclose(margin_bias, bias[1:] - bias[:1])
    summary = experts.summary
    assert summary["model"]["experts"] == SOURCES
    assert [summary["experts"][s]["n_train"] for s in SOURCES] == [
        runs[s].summary["result"]["n_train"] for s in SOURCES]
    assert summary["training"]["steps_per_epoch"] == sum(runs[s].summary["training"]["steps_per_epoch"] for s in SOURCES)
    assert summary["result"]["optimizer_iterations"] == 2 * summary["training"]["steps_per_epoch"]
    for source in SOURCES:
        tail = experts.folder / "experts" / source
        assert (tail / "history.csv").is_file() and (tail / "expert.weights.h5").is_file()
        assert not (tail / "backup").exists()
    assert not (experts.folder / "backup").exists()


def test_a_tail_exports_as_the_run_on_its_source_alone(runs):
    """`convert --tail`: the file of one tail scores as the held-out run's model and says everywhere
    that it is that run (training sources, data counts, validation, the commands that remake it)."""
    from convert.export import export_run
    from convert.metadata import read_model_info
    experts = runs["experts"]
    images = np.random.default_rng(3).integers(0, 256, (8, 64, 64, 3)).astype(np.float32)
    for source in SOURCES:
        (other,) = (s for s in SOURCES if s != source)
        report, qat = export_run(experts.folder, variants=("float32", "int8_qat"), tail=source, qat_epochs=1,
                                 calibration_size=16, check_images=24)
        assert qat["float_ops"] == ["DEQUANTIZE", "SOFTMAX"] and qat["vs_float32"]["decision_agreement"] >= 0.8
        path = experts.folder / f"export_tail_{source}" / f"experts_tail_{source}_float32.tflite"
        assert report["path"] == str(path)
        alone = runs[source]
        assert np.allclose(TfliteModel(path).probabilities(images), alone.model.predict(images, verbose=0), atol=1e-5)
        info = read_model_info(path)
        assert set(info.train_sources) == set(alone.config.data.sources) and other not in info.train_sources
        assert info.extra["data_counts"] == alone.summary["data"]["counts"]
        card = (path.parent / "MODEL_CARD.md").read_text()
        assert f"--run {experts.folder} --tail {source}" in card
        (train,) = [line for line in card.splitlines() if line.startswith("python -m train ")]
        assert f"--out {experts.folder.parent / f'experts_tail_{source}'} " in train
        assert f"""data.exclude_sources=["{other}"]""" in train
        assert f"{alone.summary['result']['val_accuracy']:.3f}" in card
    assert not (experts.folder / "export").exists()  # the joined model's own export folder is left alone


def test_a_tail_is_asked_of_an_experts_run_by_a_source_it_has(runs):
    from convert.tail import tail_run
    from train.run_folder import RunError
    with pytest.raises(RunError, match="needs an experts run"):
        tail_run(runs["gan_faces"], "gan_faces")
    with pytest.raises(RunError, match="no tail 'sdxl_faces'; its tails are gan_faces, sd21_faces"):
        tail_run(runs["experts"], "sdxl_faces")


def test_a_tail_offset_raises_that_tail_before_the_maximum_and_is_recorded(tiny_experts_run, demo_data, tmp_path):
    """`convert --tail_offset sd21_faces=1.5`: the joined file scores sigmoid(max(z_gan, z_sd + 1.5)),
    the run's own model is left as it was, and the metadata and the card's command say so."""
    import tf_keras

    from convert.export import export_run
    from convert.metadata import read_model_info
    from convert.tail import offset_tails
    from train.data import load_records, preprocess_records, select
    run = load_run(tiny_experts_run)
    images, *_ = preprocess_records(select(load_records(demo_data), None, ["val"]), run.config.preprocessing(),
                                    "val images")
    images = images.astype(np.float32)

    def logits(model):
        probe = tf_keras.Model(model.input, [model.get_layer(f"{s}__fake_logit").output for s in SOURCES])
        return [np.asarray(z, np.float64)[:, 0] for z in probe.predict(images, verbose=0)]

    gan, sd = logits(run.model)
    shifted = logits(offset_tails(run, {"sd21_faces": 1.5}).model)
    assert np.allclose(shifted[0], gan, atol=1e-6) and np.allclose(shifted[1], sd + 1.5, atol=1e-5)
    assert np.allclose(logits(run.model)[1], sd)  # a copy: the run's model is unchanged
    (report,) = export_run(tiny_experts_run, tmp_path / "offset", ("float32",), tail_offsets={"sd21_faces": 1.5},
                           check_images=24)
    p = TfliteModel(report["path"]).probabilities(images)[:, 1]
    assert np.allclose(p, 1 / (1 + np.exp(-np.maximum(gan, sd + 1.5))), atol=1e-5)
    assert not np.allclose(p, 1 / (1 + np.exp(-np.maximum(gan, sd))), atol=1e-3)  # the offset decides some images
    assert read_model_info(report["path"]).extra["tail_offsets"] == {"sd21_faces": 1.5}
    card = (tmp_path / "offset" / "MODEL_CARD.md").read_text()
    assert "--tail_offset sd21_faces=1.5 " in card
    assert "each after its offset (sd21_faces +1.5, given by `--tail_offset`)" in card


def test_a_tail_offset_is_asked_of_an_experts_tail_in_one_form(runs):
    from convert.export import export_run
    from convert.tail import offset_tails
    from convert.variants import parse_tail_offsets
    from train.run_folder import RunError
    assert parse_tail_offsets(["sd21_faces=2", "gan_faces=-0.5"]) == {"sd21_faces": 2.0, "gan_faces": -0.5}
    assert parse_tail_offsets([]) == {}
    for bad in (["sd21_faces"], ["=2"], ["sd21_faces=two"], ["sd21_faces=inf"], ["sd21_faces=1", "sd21_faces=2"]):
        with pytest.raises(ValueError, match="write SOURCE=LOGIT once per tail"):
            parse_tail_offsets(bad)
    with pytest.raises(RunError, match="needs an experts run"):
        offset_tails(runs["gan_faces"], {"gan_faces": 1.0})
    with pytest.raises(RunError, match="names no tail 'sdxl_faces'; its tails are gan_faces, sd21_faces"):
        offset_tails(runs["experts"], {"sdxl_faces": 1.0})
    with pytest.raises(ValueError, match="a tail exported on its own"):
        export_run(runs["experts"].folder, tail="gan_faces", tail_offsets={"sd21_faces": 1.0})
    assert parse_tail_offsets(["auto"], "source_fpr=0.05") == "auto"
    with pytest.raises(ValueError, match="give --threshold_target too"):
        parse_tail_offsets(["auto"])
    with pytest.raises(ValueError, match="write SOURCE=LOGIT once per tail, e.g. sd21_faces=2, or auto alone"):
        parse_tail_offsets(["auto", "sd21_faces=1"])
    with pytest.raises(ValueError, match="give --threshold_target too"):
        export_run(runs["experts"].folder, tail_offsets="auto")
    with pytest.raises(RunError, match="--tail_offset auto needs an experts run"):
        export_run(runs["gan_faces"].folder, tail_offsets="auto", threshold_target="balanced")


def _offset_world(sd_outliers=None, grey_sd_reals=None):
    """Validation logits per tail: 40 reals of two sources that the GAN tail scores -3..0 and the
    diffusion tail -8; 10 GAN faces (GAN tail 3, one 10) and 10 diffusion images that the diffusion
    tail scores -4.5..-2.25: weak evidence, below the GAN tail's reals until it is raised."""
    y = np.array([0] * 40 + [1] * 20)
    sources = np.array(["real_a"] * 20 + ["real_b"] * 20 + ["gan_faces"] * 10 + ["sd21_faces"] * 10)
    gan = np.concatenate([np.linspace(-3, 0, 20)] * 2 + [np.full(9, 3.0), [10.0], np.full(10, -5.0)])
    sd = np.concatenate([np.full(50, -8.0), np.linspace(-4.5, -2.25, 10)])
    if sd_outliers is not None:
        sd[:2] = sd_outliers  # two real_a photos the diffusion tail calls fake-ish (CIPLAB's stock portraits)
    grey_sd = sd.copy()
    if grey_sd_reals is not None:
        grey_sd[:40] = grey_sd_reals
    return {"gan_faces": gan, "sd21_faces": sd}, {"gan_faces": gan, "sd21_faces": grey_sd}, y, sources


@pytest.mark.parametrize("world, chosen, stop", [
    ({}, 8.0, None),  # nothing breaks: up to the gap between the tails' real-photo levels (-0.08 vs -8)
    ({"sd_outliers": -1.75}, 4.5, "gan_faces"),  # the outliers pass the GAN faces: 10 caught -> 1
    ({"grey_sd_reals": -4.0}, 3.5, "grey"),  # greyscale lifts the diffusion tail on every real photo
])
def test_auto_tail_offsets_raise_the_tail_that_scores_reals_lower_until_something_is_lost(world, chosen, stop):
    from convert.tail import choose_offsets
    offsets, steps = choose_offsets(*_offset_world(**world), "source_fpr=0.05")
    assert offsets == {"sd21_faces": chosen}  # the GAN tail scores the reals highest: it keeps 0
    base = steps[0]
    assert base["offsets"] == {} and base["threshold_logit"] == 0.0 and base["reals_fake"] == 2
    assert base["caught"] == {"gan_faces": 10, "sd21_faces": 0}
    assert [step["offsets"]["sd21_faces"] for step in steps[1:]] == [0.5 * k for k in range(1, len(steps))]
    assert all(step["passes"] for step in steps[1:-1])
    last = steps[-1]
    if stop is None:
        assert last["passes"] and last["offsets"]["sd21_faces"] == chosen
        assert last["caught"] == {"gan_faces": 10, "sd21_faces": 10}  # the weak evidence now counts
    else:
        assert not last["passes"] and last["offsets"]["sd21_faces"] == chosen + 0.5
        if stop == "gan_faces":
            assert last["caught"]["gan_faces"] == 1 and last["threshold_logit"] == 10.0
        else:
            assert last["reals_fake_grey"] == 40 and last["reals_fake"] == 2


def test_a_step_where_no_threshold_keeps_the_target_fails():
    from convert.tail import choose_offsets
    stored, grey, y, sources = _offset_world(sd_outliers=-1.75)
    stored["gan_faces"][49] = grey["gan_faces"][49] = 3.0  # no GAN face above the outliers any more
    offsets, steps = choose_offsets(stored, grey, y, sources, "source_fpr=0.05")
    assert offsets == {"sd21_faces": 4.5} and steps[-1] == {"offsets": {"sd21_faces": 5.0}, "threshold_logit": None,
                                                            "passes": False}


def test_an_auto_tail_offset_is_chosen_on_validation_and_recorded(tiny_experts_run, demo_data, tmp_path):
    """`convert --tail_offset auto`: the offsets `auto_offsets` chooses on the run's validation split
    are the ones exported, listed with every step in the report and recorded in the metadata; the
    card's command chooses them again."""
    import tf_keras

    from convert.export import export_run
    from convert.metadata import read_model_info
    from convert.tail import auto_offsets
    from train.data import load_records, preprocess_records, select
    run = load_run(tiny_experts_run)
    chosen, steps = auto_offsets(run, load_records(demo_data), "balanced")
    assert len(chosen) == 1 and set(chosen) < set(SOURCES)  # every tail but the one that scores reals highest
    (report,) = export_run(tiny_experts_run, tmp_path / "auto", ("float32",), tail_offsets="auto",
                           threshold_target="balanced", check_images=24)
    assert report["tail_offset_steps"] == json.loads(json.dumps(steps))
    info = read_model_info(report["path"])
    assert info.extra["tail_offsets"] == chosen and info.extra["tail_offsets_chosen_by"] == "auto"
    card = (tmp_path / "auto" / "MODEL_CARD.md").read_text()
    assert "--tail_offset auto " in card
    (source, offset), = chosen.items()
    assert f"each after its offset ({source} {offset:+g}, chosen on the validation split by `--tail_offset auto`)" in card
    images, *_ = preprocess_records(select(load_records(demo_data), None, ["val"]), run.config.preprocessing(),
                                    "val images")
    probe = tf_keras.Model(run.model.input, [run.model.get_layer(f"{s}__fake_logit").output for s in SOURCES])
    z = [np.asarray(t, np.float64)[:, 0] + chosen.get(s, 0.0) for s, t in zip(SOURCES, probe.predict(images, verbose=0))]
    p = TfliteModel(report["path"]).probabilities(images)[:, 1]
    assert np.allclose(p, 1 / (1 + np.exp(-np.maximum(*z))), atol=1e-5)


def test_the_joined_model_calls_fake_when_any_tail_does(tiny_experts_run, demo_data):
    """p(fake) = sigmoid(max of the tails' fake-minus-real logits), the tails' heads being the
    held-out runs' heads (above)."""
    import tf_keras
    from train.data import load_records, preprocess_records, select
    model = load_run(tiny_experts_run).model
    images, *_ = preprocess_records(select(load_records(demo_data), None, ["val"]), load_run(tiny_experts_run)
                                    .config.preprocessing(), "val images")
    probe = tf_keras.Model(model.input, [model.get_layer(f"{s}__fake_logit").output for s in SOURCES] + [model.output])
    *logits, joined = [np.asarray(t, np.float64) for t in probe.predict(images.astype(np.float32), verbose=0)]
    assert joined.shape == (len(images), 2) and np.allclose(joined.sum(1), 1.0, atol=1e-6)
    assert np.allclose(joined[:, 1], 1 / (1 + np.exp(-np.maximum(*logits)[:, 0])), atol=1e-5)
    assert np.abs(logits[0] - logits[1]).min() > 1e-3  # two tails that differ: the maximum is a choice


def test_grad_cam_reads_every_tail(runs):
    model = runs["experts"].model
    assert [layer.name for layer in last_conv_layers(model)] == [f"{s}__conv_pw_13_relu" for s in SOURCES]
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    heat = grad_cam(model, image, class_index=int(model(image[None].astype(np.float32))[0].numpy().argmax()))
    assert heat.shape == (64, 64) and heat.max() == pytest.approx(1.0) and heat.min() >= 0.0


def test_experts_export_as_one_graph_with_an_int8_body(tiny_experts_run, tiny_experts_export):
    """float32: the Keras model's scores; int8_qat: integer up to the float softmax (the MAXIMUM of
    the tails' logits included), and its decisions mostly the float model's."""
    summary = json.loads((tiny_experts_run / "config.json").read_text())
    assert summary["model"]["experts"] == SOURCES and summary["result"]["val_auc"] > 0.8
    float32, qat = tiny_experts_export["float32"], tiny_experts_export["int8_qat"]
    assert "MAXIMUM" in float32["float_ops"]
    images = np.random.default_rng(2).integers(0, 256, (8, 96, 96, 3)).astype(np.float32)
    keras_scores = load_run(tiny_experts_run).model.predict(images, verbose=0)
    assert np.allclose(TfliteModel(float32["path"]).probabilities(images), keras_scores, atol=1e-5)
    assert qat["float_ops"] == ["DEQUANTIZE", "SOFTMAX"]
    assert qat["vs_float32"]["decision_agreement"] >= 0.8


def test_qat_distils_each_tail_on_its_own_images(tiny_experts_run, demo_data):
    """Each tail's targets are its own float logit and the label, joined or alone; another source's
    fakes weigh 0."""
    import tf_keras

    from convert.qat import Distillation, quantize_aware
    from train.data import load_records, preprocess_records, select
    from train.experts import single_tail
    from train.run import loss_weights
    run = load_run(tiny_experts_run)
    records = select(load_records(demo_data), run.config.data.sources, ["val"])
    x, _, kept, _ = preprocess_records(records, run.config.preprocessing(), "val images")
    distill = Distillation(run.model, quantize_aware(run.model), run.config.data, 0.75, 1e-5)
    assert distill.sources == SOURCES and len(distill.fit_model.outputs) == 2
    targets, weights = distill.targets(x.astype(np.float32), kept, 16)
    y = np.array([r.y for r in kept])
    for source, target, w in zip(SOURCES, targets, weights):
        mine = np.array([r.label == "real" or r.source == source for r in kept])
        assert np.all(w[~mine] == 0) and np.allclose(w[mine], loss_weights([r for r, m in zip(kept, mine) if m],
                                                                          run.config.data))
        logit = tf_keras.Model(run.model.input, run.model.get_layer(f"{source}__fake_logit").output)
        m = logit.predict(x.astype(np.float32), verbose=0)[:, 0].astype(np.float64)
        assert target.shape == (len(kept), 2) and np.allclose(target[:, 0], m, atol=1e-5)
        assert np.array_equal(target[:, 1], y)
        # one tail on its own (convert --tail): every image gets its own logit, not the first image's
        alone = single_tail(run.model, source)
        (target_alone,), _ = Distillation(alone, quantize_aware(alone), run.config.data, 0.75, 1e-5).targets(
            x.astype(np.float32), kept, 16)
        assert np.allclose(target_alone[:, 0], m, atol=1e-5) and np.ptp(target_alone[:, 0]) > 0


def test_qat_loss_holds_each_tail_to_its_float_logit_where_probabilities_saturate():
    """The experts' QAT loss: label_weight × the label's cross-entropy + the rest × half the squared
    logit distance. A confidently real image whose int8 logit drifted from -12 to -6 costs over 4
    (the probability fit it replaced charged about 0.002 there); a logit on its float target costs only
    the label part."""
    import tensorflow as tf

    from convert.qat import logit_loss
    loss = logit_loss(0.75)
    target = np.array([[-12.0, 0.0], [-12.0, 0.0], [3.0, 1.0]], np.float32)
    z = np.array([[-6.0], [-12.0], [3.0]], np.float32)
    got = loss(tf.constant(target), tf.constant(z)).numpy()
    bce = np.log1p(np.exp(-np.abs(z[:, 0]))) + np.maximum(z[:, 0], 0) - z[:, 0] * target[:, 1]
    assert np.allclose(got, 0.75 * bce + 0.25 * 0.5 * (z[:, 0] - target[:, 0]) ** 2, atol=1e-6)
    assert got[0] > 4.0 and got[1] < 1e-5 and got[2] == pytest.approx(0.75 * np.log1p(np.exp(-3.0)), abs=1e-6)
