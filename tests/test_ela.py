import io

import numpy as np
import pytest
from PIL import Image

from ela import ElaParams, FormatControl, Preprocessing, decode_rgb, error_level, to_rgb
from train.demo_data import synthetic_image


def natural_image(size=128, seed=0) -> Image.Image:
    return Image.fromarray(synthetic_image(np.random.RandomState(seed), size, "noise"))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_image_saved_at_q_has_near_zero_ela_at_q_and_png_does_not():
    img = natural_image(160)
    jpeg90 = decode_rgb(encode(img, "JPEG", quality=90))
    raw = ElaParams(quality=90, scale=1.0)
    assert error_level(jpeg90, raw).mean() < 0.5
    assert error_level(img, raw).mean() > 2.0
    # the same JPEG re-saved at another quality is far from idempotent
    assert error_level(jpeg90, ElaParams(quality=75, scale=1.0)).mean() > 1.0


def test_auto_scale_stretches_to_255_and_flat_image_gives_zeros():
    out = error_level(natural_image(), ElaParams(quality=90, scale="auto"))
    assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
    assert out.max() == 255
    flat = Image.new("RGB", (64, 48), (128, 128, 128))
    assert not error_level(flat, ElaParams()).any()


def test_fixed_scale_is_diff_times_scale_clipped():
    img = natural_image(64)
    raw = error_level(img, ElaParams(quality=80, scale=1.0)).astype(np.int64)
    scaled = error_level(img, ElaParams(quality=80, scale=10.0)).astype(np.int64)
    assert np.array_equal(scaled, np.minimum(raw * 10, 255))


def test_ela_is_deterministic():
    img = natural_image(96, seed=3)
    assert np.array_equal(error_level(img, ElaParams()), error_level(img, ElaParams()))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "CMYK", "I;16", "LA", "1"])
def test_every_pillow_mode_becomes_rgb(mode):
    img = natural_image(48).convert(mode) if mode != "I;16" else Image.fromarray(
        np.arange(48 * 48, dtype=np.uint16).reshape(48, 48) * 28)
    rgb = to_rgb(img)
    assert rgb.mode == "RGB" and rgb.size == (48, 48)
    assert error_level(rgb, ElaParams()).shape == (48, 48, 3)


def test_16_bit_is_scaled_not_clipped():
    img = Image.fromarray(np.full((8, 8), 65535 // 2, np.uint16))
    assert img.mode == "I;16"
    assert abs(int(np.asarray(to_rgb(img))[0, 0, 0]) - 127) <= 1


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(to_rgb(img)).min() == 255


def test_params_validate():
    with pytest.raises(ValueError):
        ElaParams(quality=0)
    with pytest.raises(ValueError):
        ElaParams(scale=-1.0)
    with pytest.raises(ValueError):
        ElaParams(resolution="half")
    with pytest.raises(ValueError):
        FormatControl(90, 70)


@pytest.mark.parametrize("prep", [
    Preprocessing(64),
    Preprocessing(64, ela=ElaParams(90, "auto", "full")),
    Preprocessing(64, ela=ElaParams(75, 15.0, "resized")),
    Preprocessing(64, ela=ElaParams(), format_control=FormatControl(70, 95)),
])
def test_preprocessing_shapes_and_round_trip(prep):
    out = prep.apply(natural_image(100), "ab" * 32)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert Preprocessing.from_dict(prep.to_dict()) == prep


def test_full_and_resized_ela_differ():
    img = natural_image(200)
    full = Preprocessing(64, ela=ElaParams(resolution="full")).apply(img)
    resized = Preprocessing(64, ela=ElaParams(resolution="resized")).apply(img)
    assert not np.array_equal(full, resized)


def test_format_control_quality_is_deterministic_and_in_range():
    fc = FormatControl(70, 95)
    qualities = [fc.quality_for(f"{i:08x}" + "0" * 56) for i in range(0, 2**32, 2**26)]
    assert min(qualities) >= 70 and max(qualities) <= 95 and len(set(qualities)) > 10
    assert fc.quality_for("deadbeef" + "0" * 56) == fc.quality_for("deadbeef" + "1" * 56)


def test_format_control_removes_the_file_format():
    """A PNG and a JPEG of the same picture come out of the controlled protocol nearly alike."""
    img = natural_image(128)
    prep = Preprocessing(64, format_control=FormatControl(80, 80))
    from_png = prep.apply(decode_rgb(encode(img, "PNG")), "00" * 32)
    from_jpeg = prep.apply(decode_rgb(encode(img, "JPEG", quality=95)), "00" * 32)
    assert np.abs(from_png.astype(int) - from_jpeg.astype(int)).mean() < 1.5


def test_audited_controlled_file_is_what_the_model_sees():
    """The bytes the audit inspects decode to exactly the image `Preprocessing.apply` uses."""
    img, sha = natural_image(150), "3f" * 32
    fc = FormatControl(70, 95)
    assert np.array_equal(np.asarray(decode_rgb(fc.encode(img, sha, 64))),
                          Preprocessing(64, format_control=fc).apply(img, sha))
