"""Training augmentation: deterministic per (seed, view, content), the same for both classes,
each change doing what it says; loss weights and source resolution of the recommended config."""
import dataclasses
import hashlib

import numpy as np
import pytest
from PIL import Image

from ela import Preprocessing
from train.augment import Augmentation, augmented
from train.configs import DataConfig, TrainConfig, get_config, with_fields
from train.data import DataError, Record

NOTHING = Augmentation(crop_p=0, rescale_p=0, jpeg_p=0, flip_p=0, grey_p=0, blur_p=0)


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC)
    pixels = np.clip(np.asarray(coarse, np.float64) + rng.normal(0, 5, (120, 160, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def sha_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_seed_view_and_content_give_the_same_image_and_other_views_differ(photo):
    prep = Preprocessing(64)
    first = augmented(prep, Augmentation(), 0, 0).load(photo)
    assert np.array_equal(first, augmented(prep, Augmentation(), 0, 0).load(photo))
    others = [augmented(prep, Augmentation(), seed, view).load(photo) for seed, view in ((0, 1), (0, 2), (1, 0))]
    assert all(x.shape == (64, 64, 3) and x.dtype == np.uint8 for x in others)
    assert sum(not np.array_equal(first, x) for x in others) >= 2


def test_draws_depend_on_content_not_on_label_or_path(photo, tmp_path):
    """Real and fake images are treated alike: the draws see only seed, view and file content."""
    aug = Augmentation()
    copy = tmp_path / "elsewhere" / "copy.png"
    copy.parent.mkdir()
    copy.write_bytes(photo.read_bytes())
    assert np.array_equal(augmented(Preprocessing(64), aug, 5, 3).load(photo),
                          augmented(Preprocessing(64), aug, 5, 3).load(copy))
    a, b = aug.rng(5, 3, sha_of(photo)).random(4), aug.rng(5, 3, sha_of(photo)).random(4)
    assert np.array_equal(a, b)


def test_no_change_when_every_probability_is_zero(photo):
    prep = Preprocessing(64)
    assert np.array_equal(augmented(prep, NOTHING, 0, 0).load(photo), prep.load(photo))


def test_each_change_does_what_it_says(photo):
    img = Image.open(photo).convert("RGB")
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    flipped = dataclasses.replace(NOTHING, flip_p=1).apply(img, rng())
    assert np.array_equal(np.asarray(flipped), np.asarray(img)[:, ::-1])
    grey = np.asarray(dataclasses.replace(NOTHING, grey_p=1).apply(img, rng()))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    cropped = dataclasses.replace(NOTHING, crop_p=1, crop_min=0.5).apply(img, rng())
    assert 80 <= cropped.width <= 160 and 60 <= cropped.height <= 120
    assert cropped.width / cropped.height == pytest.approx(160 / 120, abs=0.03)
    small = dataclasses.replace(NOTHING, rescale_p=1, rescale_range=(0.1, 0.1), min_side=30).apply(img, rng())
    assert min(small.size) == 30  # never below min_side on the short side
    resaved = dataclasses.replace(NOTHING, jpeg_p=1, jpeg_quality=(20, 20)).apply(img, rng())
    assert resaved.size == img.size and np.abs(np.asarray(resaved, int) - np.asarray(img, int)).mean() > 1
    blurred = np.asarray(dataclasses.replace(NOTHING, blur_p=1, blur_radius=(1.5, 1.5)).apply(img, rng()), float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(np.asarray(img, float), axis=1)).mean()


def test_colour_grade_changes_saturation_and_white_balance_and_nothing_else(photo):
    img = Image.open(photo).convert("RGB")
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    neutral = dataclasses.replace(NOTHING, colour_p=1, colour_range=(1.0, 1.0), gain_range=(1.0, 1.0))
    assert np.array_equal(np.asarray(neutral.apply(img, rng())), np.asarray(img))
    spread = lambda x: np.asarray(x, float).std(axis=2).mean()  # noqa: E731  (how far channels differ)
    dull = dataclasses.replace(neutral, colour_range=(0.5, 0.5)).apply(img, rng())
    assert dull.size == img.size and spread(dull) < 0.7 * spread(img)
    warm = np.asarray(dataclasses.replace(neutral, gain_range=(0.9, 1.1)).apply(img, rng()), float)
    ratios = warm.reshape(-1, 3).mean(0) / np.asarray(img, float).reshape(-1, 3).mean(0)
    assert np.all((ratios > 0.88) & (ratios < 1.12)) and ratios.max() - ratios.min() > 0.01


def test_a_colour_grade_does_not_move_the_other_draws(photo):
    """The grade's draws come last, so configs without it (colour_p=0) keep their views."""
    img = Image.open(photo).convert("RGB")
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    base = Augmentation()
    other_range = dataclasses.replace(base, colour_range=(0.5, 2.0), gain_range=(0.8, 1.2))
    assert np.array_equal(np.asarray(base.apply(img, rng())), np.asarray(other_range.apply(img, rng())))
    assert not np.array_equal(np.asarray(base.apply(img, rng())),
                              np.asarray(dataclasses.replace(base, colour_p=1).apply(img, rng())))


def test_a_native_patch_keeps_the_pixels_and_replaces_crop_and_rescale(photo):
    """patch_p: a square window of patch_side pixels cut out at native resolution (the photo's own
    pixels, no resampling) instead of the crop and the rescale; off, it moves no other view."""
    img = Image.open(photo).convert("RGB")  # 160 x 120
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    patcher = dataclasses.replace(NOTHING, patch_p=1, patch_side=(50, 90), crop_p=1, crop_min=0.9, rescale_p=1,
                                  rescale_range=(0.5, 0.5))
    patch = patcher.apply(img, rng())
    assert patch.width == patch.height and 50 <= patch.width <= 90
    pixels, found = np.asarray(img), np.asarray(patch)
    assert any(np.array_equal(pixels[y:y + patch.height, x:x + patch.width], found)  # a window of the photo itself
               for y in range(121 - patch.height) for x in range(161 - patch.width))
    whole = dataclasses.replace(patcher, patch_side=(500, 500)).apply(img, rng())
    assert whole.size == (120, 120)  # at most the shorter side
    base = Augmentation()
    assert np.array_equal(np.asarray(base.apply(img, rng())),  # patch_p 0 leaves every existing view as it was
                          np.asarray(dataclasses.replace(base, patch_side=(224, 224)).apply(img, rng())))


def test_change_rates_match_the_probabilities(photo):
    """Over many draws each change happens about as often as configured."""
    img = Image.open(photo).convert("RGB").resize((40, 30))
    aug = dataclasses.replace(NOTHING, flip_p=0.5, grey_p=0.2)
    grey = flipped = 0
    for view in range(400):
        out = np.asarray(aug.apply(img, aug.rng(0, view, "ab" * 32)))
        is_grey = np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
        grey += is_grey
        reference = np.asarray(img.convert("L").convert("RGB") if is_grey else img)
        flipped += np.array_equal(out, reference[:, ::-1])
    assert 0.42 < flipped / 400 < 0.58 and 0.14 < grey / 400 < 0.26


@pytest.mark.parametrize("field,value", [("views", 0), ("flip_p", 1.5), ("crop_min", 0.0),
                                         ("rescale_range", (2.0, 1.0)), ("jpeg_quality", (0, 90)),
                                         ("colour_p", -0.1), ("colour_range", (1.5, 1.1)),
                                         ("gain_range", (0.0, 1.0)), ("patch_p", 2.0), ("patch_side", (300, 200)),
                                         ("patch_side", (0, 10))])
def test_invalid_augmentation_settings_are_errors(field, value):
    with pytest.raises(ValueError, match=field):
        Augmentation(**{field: value})


def test_augmentation_round_trips_through_the_run_config():
    cfg = get_config("fakelens")
    assert cfg.data.augment is not None and cfg.data.balance and cfg.data.sources == ()
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.data.augment.jpeg_quality == cfg.data.augment.jpeg_quality


def record(source, label, split="train") -> Record:
    return Record(None, label, source, split, hashlib.sha256(f"{source}{label}{split}".encode()).hexdigest())


def test_balanced_loss_weights_give_each_class_and_each_source_within_it_an_equal_share():
    from train.run import loss_weights
    records = [record("a", "real")] * 30 + [record("b", "real")] * 10 + [record("f", "fake")] * 20
    w = loss_weights(records, DataConfig(balance=True))
    assert w.mean() == pytest.approx(1.0)
    total = lambda src: sum(wi for wi, r in zip(w, records) if r.source == src)  # noqa: E731
    assert total("a") == pytest.approx(total("b")) and total("f") == pytest.approx(total("a") + total("b"))
    assert np.array_equal(loss_weights(records, DataConfig()), np.ones(60))


def test_source_weights_set_a_sources_share_of_its_class_and_leave_the_class_halves_equal():
    from train.run import loss_weights
    records = ([record("a", "real")] * 30 + [record("b", "real")] * 10 + [record("gan", "fake")] * 20
               + [record("sd", "fake")] * 40)
    w = loss_weights(records, DataConfig(balance=True, source_weights=("gan=0.5",)))
    total = lambda src: sum(wi for wi, r in zip(w, records) if r.source == src)  # noqa: E731
    assert w.mean() == pytest.approx(1.0)
    assert total("gan") == pytest.approx(0.5 * total("sd"))  # GAN: a third of the fake half, SD two thirds
    assert total("gan") + total("sd") == pytest.approx(total("a") + total("b")) == pytest.approx(len(records) / 2)
    assert total("a") == pytest.approx(total("b"))  # sources not named keep weight 1


def test_an_epoch_of_a_real_share_keeps_every_fake_a_fresh_share_of_reals_and_the_class_balance():
    """optim.real_share: each epoch draws its reals anew from (seed, epoch); the weights keep each
    class's total; share 1 is the plain shuffled epoch."""
    from train.run import epoch_rows, epoch_size
    y = np.array([0] * 30 + [1] * 10)
    w = np.where(y == 0, 0.5, 1.5).astype(np.float32)
    (order, weights), (again, _), (other, _) = (epoch_rows(y, w, 7, e, 0.4) for e in (3, 3, 4))
    assert np.array_equal(order, again) and set(order) != set(other)
    assert len(order) == epoch_size(y, 0.4) == 22 and np.sum(y[order] == 1) == 10 and len(set(order)) == 22
    late = [epoch_rows(y, w, 7, e, 0.4)[0][-6:] for e in range(20)]  # the epoch's end mixes the classes too
    assert 0.25 < np.mean([np.mean(y[tail] == 0) for tail in late]) < 0.85
    assert weights[y[order] == 0].sum() == pytest.approx(w[y == 0].sum())
    assert weights[y[order] == 1].sum() == pytest.approx(w[y == 1].sum())
    plain, plain_w = epoch_rows(y, w, 7, 3)
    assert sorted(plain) == list(range(40)) and np.array_equal(plain_w, w[plain]) and epoch_size(y) == 40
    with pytest.raises(ValueError, match="real_share"):
        with_fields(get_config("fakelens"), **{"optim.real_share": 0.0})


@pytest.mark.parametrize("items, balance, message", [
    (("gan=0",), True, "positive weight"), (("gan",), True, "source=weight"), (("=2",), True, "source=weight"),
    (("gan=x",), True, "positive weight"), (("gan=inf",), True, "positive weight"),
    (("gan=0.5", "gan=2"), True, "once per source"), (("gan=0.5",), False, "data.balance=true")])
def test_malformed_source_weights_are_refused_when_the_config_is_made(items, balance, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(balance=balance, source_weights=items)


def test_source_weights_of_a_source_not_trained_on_are_noted_and_ignored(capsys):
    from train.run import loss_weights, resolve_sources
    records = [record("real_ciplab", "real"), record("gan_faces", "fake")]
    cfg = resolve_sources(with_fields(get_config("fakelens"), source_weights=("sd21_faces=2",)), records, "data")
    assert "source_weights name sd21_faces, which this run does not train on; ignored" in capsys.readouterr().out
    assert cfg.data.sources == ("gan_faces", "real_ciplab")
    assert np.array_equal(loss_weights(records, cfg.data), np.ones(2))


def test_sources_resolve_to_every_trained_source_minus_the_excluded():
    from train.run import resolve_sources
    records = [record("real_x", "real"), record("gan", "fake"), record("sd", "fake"), record("only_test", "fake", "test")]
    cfg = get_config("fakelens")
    assert resolve_sources(cfg, records, "data").data.sources == ("gan", "real_x", "sd")
    held_out = with_fields(cfg, exclude_sources=("gan",))
    assert resolve_sources(held_out, records, "data").data.sources == ("real_x", "sd")
    with pytest.raises(DataError, match="nowhere"):
        resolve_sources(with_fields(cfg, exclude_sources=("nowhere",)), records, "data")


def test_any_field_can_be_set_by_name_and_nested_fields_by_dotted_name():
    from train.configs import override
    cfg = override(get_config("fakelens"), ["augment.grey_p=0.15", "epochs=3", "augment.jpeg_quality=[60,90]",
                                            "lr_schedule=constant"])
    assert cfg.data.augment.grey_p == 0.15 and cfg.optim.epochs == 3 and cfg.data.augment.jpeg_quality == (60, 90)
    assert cfg.optim.lr_schedule == "constant" and cfg.data.augment.views == get_config("fakelens").data.augment.views
    for bad, words in (("epochs", "field=value"), ("nonsense=1", "no field 'nonsense'"),
                       ("epochs.x=1", "not a group"), ("augment.grey_p=2", "probability")):
        with pytest.raises(ValueError, match=words):
            override(get_config("fakelens"), [bad])
