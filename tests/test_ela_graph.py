"""convert.ela_layer and convert.selective_quantization: the in-graph ELA equals ela.error_level pixel for pixel, as a Keras layer
and as a .tflite run by ai-edge-litert with and without its default XNNPACK delegate."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from convert.converters import converters_of  # noqa: E402
from convert.ela_layer import ElaLayer, ela_model  # noqa: E402
from convert.selective_quantization import ela_tensor_names, quantize_keeping_ela_float  # noqa: E402
from ela import ElaParams, error_level  # noqa: E402
from ela.preprocess import RESAMPLE  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _u8(a) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def synthetic_images(height: int, width: int | None = None, seed: int = 0) -> np.ndarray:
    """Five test images (N, H, W, 3) uint8: a scene of gradients, noise, edges and text; a
    photo-like smooth field with texture; saturated colour blocks; uniform noise; flat grey."""
    width = width or height
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    scene = np.stack([255 * xx, 255 * yy, 128 + 100 * np.sin(9 * xx + 5 * yy)], -1)
    scene = Image.fromarray(_u8(scene + rng.normal(0, 10, scene.shape)))
    draw = ImageDraw.Draw(scene)
    draw.rectangle([width // 5, height // 4, width // 2, height // 2], fill=(240, 30, 20))
    if min(height, width) >= 8:
        draw.ellipse([width // 2, height // 2, width - 2, height - 2], outline=(10, 250, 10), width=2)
    for _ in range(4 if min(height, width) >= 8 else 0):
        x, y = rng.integers(0, max(width - 20, 1)), rng.integers(0, max(height - 8, 1))
        draw.text((int(x), int(y)), "FakeLens 42", fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    field = Image.fromarray(_u8(rng.uniform(0, 255, (5, 5, 3)))).resize((width, height), Image.BICUBIC)
    photo = np.asarray(field, np.float64) * (1 - 0.4 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2))[..., None]
    photo = _u8(photo + rng.normal(0, 4, photo.shape) + 12 * np.sin(40 * xx)[..., None])
    blocks = np.zeros((height, width, 3), np.uint8)
    blocks[::2, :, 0] = 255
    blocks[:, width // 2:, 1] = 255
    blocks[height // 3:, :width // 3] = (0, 0, 255)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    flat = np.full((height, width, 3), 128, np.uint8)
    return np.stack([np.asarray(scene), photo, blocks, noise, flat])


def shared_images(size: int) -> np.ndarray:
    """Two real photos and two generated (SD 1.5 PNG) images from ../shared, resized as in training."""
    files = (sorted((SHARED_DATA / "real_ciplab").glob("*.jpg"))[:2]
             + sorted((SHARED_DATA / "sd15").glob("*.png"))[:2])
    if len(files) < 4:
        pytest.skip("../shared/data is absent")
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((size, size), RESAMPLE)) for f in files])


def reference(images: np.ndarray, params: ElaParams) -> np.ndarray:
    return np.stack([error_level(Image.fromarray(img), params) for img in images]).astype(np.float32)


def keras_ela(images: np.ndarray, params: ElaParams) -> np.ndarray:
    inputs = tf_keras.Input(images.shape[1:], dtype="float32")
    model = tf_keras.Model(inputs, ElaLayer(params)(inputs))
    return model(images.astype(np.float32)).numpy()


def to_tflite(model: tf_keras.Model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def run_tflite(model: bytes, images: np.ndarray, xnnpack: bool = True) -> list[np.ndarray]:
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=resolver)
    detail = interp.get_input_details()[0]
    interp.resize_tensor_input(detail["index"], images.shape)
    interp.allocate_tensors()
    interp.set_tensor(detail["index"], images.astype(detail["dtype"]))
    interp.invoke()
    return [interp.get_tensor(out["index"]) for out in interp.get_output_details()]


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert not len(bad), f"{len(bad)} of {want.size} values differ, first at {bad[0].tolist()}: " \
                         f"{got[tuple(bad[0])]} instead of {want[tuple(bad[0])]}"


@pytest.mark.parametrize("size", [224, 100, 37])
@pytest.mark.parametrize("quality", [50, 75, 90, 95, 100])
def test_keras_layer_is_exact(size, quality):
    images = synthetic_images(size, seed=quality)
    for scale in ("auto", 20.0):
        params = ElaParams(quality=quality, scale=scale, resolution="resized")
        assert_same(keras_ela(images, params), reference(images, params))


@pytest.mark.parametrize("quality", [1, 10, 25])
def test_keras_layer_is_exact_at_low_quality(quality):
    # Coarse tables make the largest coefficients and the IDCT's saturation likely.
    images = synthetic_images(48, seed=quality)
    params = ElaParams(quality=quality, scale="auto", resolution="resized")
    assert_same(keras_ela(images, params), reference(images, params))


# A grey 8x8 block found by search whose quality-1 decode reaches a sample of 559 - 128 before
# clamping: libjpeg-turbo's SIMD IDCT saturates it where its C version would wrap around.
EXTREME_BLOCK = [[255, 0, 5, 164, 0, 0, 255, 255], [15, 0, 0, 0, 239, 255, 0, 255],
                 [255, 0, 255, 0, 255, 255, 255, 215], [255, 255, 0, 255, 0, 255, 197, 255],
                 [0, 95, 255, 218, 0, 255, 83, 0], [192, 255, 255, 255, 0, 0, 255, 255],
                 [0, 64, 0, 0, 0, 255, 255, 255], [0, 255, 0, 0, 0, 0, 0, 255]]


def test_idct_saturates_like_libjpeg_turbo():
    grey = np.tile(np.array(EXTREME_BLOCK, np.uint8), (2, 2))
    images = np.repeat(grey[None, ..., None], 3, -1)
    params = ElaParams(quality=1, scale="auto", resolution="resized")
    assert_same(keras_ela(images, params), reference(images, params))


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (4, 4), (5, 5), (16, 16), (17, 17), (40, 57), (33, 24)])
def test_keras_layer_is_exact_for_odd_shapes(shape):
    # Partial MCUs; chroma 2 wide or less switches libjpeg-turbo to plain replication.
    images = synthetic_images(*shape, seed=sum(shape))
    params = ElaParams(quality=85, scale=15.0, resolution="resized")
    assert_same(keras_ela(images, params), reference(images, params))


@pytest.mark.parametrize("size, quality, scale, dtype", [
    (224, 90, "auto", "float32"),
    (224, 75, 20.0, "uint8"),
    (100, 50, "auto", "uint8"),
    (100, 95, 0.7, "float32"),      # a scale float32 cannot reproduce: lookup table
    (37, 100, "auto", "float32"),
    (37, 75, 12.5, "uint8"),
])
def test_tflite_is_exact_with_and_without_xnnpack(size, quality, scale, dtype):
    params = ElaParams(quality=quality, scale=scale, resolution="resized")
    images = synthetic_images(size, seed=size + quality)
    want = reference(images, params)
    model = to_tflite(ela_model(params, size, input_dtype=dtype))
    ops = {op["op_name"] for op in Interpreter(model_content=model)._get_ops_details()}  # no public op list
    assert "CONV_2D" in ops and not {o for o in ops if "FLEX" in o or "CUSTOM" in o}, ops
    for xnnpack in (True, False):
        (got,) = run_tflite(model, images, xnnpack)
        assert got.dtype == np.float32
        assert_same(got, want)


def test_real_images_are_exact(shared_data):
    images = shared_images(224)
    for params in (ElaParams(quality=90, scale="auto", resolution="resized"),
                   ElaParams(quality=75, scale=20.0, resolution="resized")):
        assert_same(keras_ela(images, params), reference(images, params))


def test_needs_resized_resolution():
    with pytest.raises(ValueError, match="resized"):
        ElaLayer(ElaParams(quality=90, scale="auto", resolution="full"))


def test_config_round_trip_and_saved_model_reload(tmp_path):
    params = ElaParams(quality=80, scale=12.5, resolution="resized")
    layer = ElaLayer(params, name="ela")
    assert ElaLayer.from_config(layer.get_config()).params == params
    model = ela_model(params, 40)
    path = tmp_path / "ela.keras"
    model.save(path)
    reloaded = tf_keras.models.load_model(path, compile=False, safe_mode=True)
    images = synthetic_images(40, seed=3)
    assert reloaded.get_layer("ela").params == params
    assert_same(reloaded(images.astype(np.float32)).numpy(), reference(images, params))


def _representative(images):
    return lambda: ([img[None]] for img in images)


def keep_ela_float(model: tf_keras.Model, images: np.ndarray) -> bytes:
    with converters_of(model) as new_converter:
        return quantize_keeping_ela_float(model, _representative(images), new_converter())


def test_uint8_ela_cast_graph_converts_with_full_integer_settings():
    """The plain full-integer settings convert "uint8 → ELA → cast" (but quantise the ELA's own
    ops, so only quantize_keeping_ela_float keeps the map exact)."""
    size = 32
    params = ElaParams(quality=90, scale="auto", resolution="resized")
    images = synthetic_images(size, seed=5)
    inputs = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    cast = tf_keras.layers.Lambda(lambda t: tf.cast(t, tf.uint8), name="cast")(ElaLayer(params, name="ela")(inputs))
    model = tf_keras.Model(inputs, cast)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(images)
    converter.inference_input_type = tf.uint8
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    assert run_tflite(converter.convert(), images)[0].shape == images.shape
    (got,) = run_tflite(keep_ela_float(model, images), images)
    assert_same(got.astype(np.float32), reference(images, params))


def test_int8_classifier_after_float_ela():
    """uint8 image → ELA → int8 classifier: the ELA ops stay float32 and exact, the rest is int8."""
    size = 48
    params = ElaParams(quality=90, scale="auto", resolution="resized")
    images = synthetic_images(size, seed=7)
    inputs = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    ela_map = ElaLayer(params, name="ela")(inputs)
    x = tf_keras.layers.Rescaling(1 / 127.5, -1.0)(ela_map)
    x = tf_keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = tf_keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(16, 1)(x))
    model = tf_keras.Model(inputs, [ela_map, tf_keras.layers.Dense(2)(x)])

    quantised = keep_ela_float(model, images)
    interp = Interpreter(model_content=quantised)
    assert interp.get_input_details()[0]["dtype"] == np.uint8
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ela_names = set(ela_tensor_names(quantised, model))
    ops = [(op["op_name"], [tensors[i] for i in op["outputs"] if i >= 0]) for op in interp._get_ops_details()]
    is_ela = [any(t["name"] in ela_names for t in outs) for _, outs in ops]
    not_float = [(name, outs) for (name, outs), ela in zip(ops, is_ela)
                 if ela and not all(t["dtype"] in (np.float32, np.int32) for t in outs)]
    assert not not_float, not_float
    float_ops = {name for (name, _), ela in zip(ops, is_ela) if ela}
    int8_ops = {name for (name, outs), ela in zip(ops, is_ela) if not ela and any(t["dtype"] == np.int8 for t in outs)}
    assert {"CONV_2D", "FLOOR"} <= float_ops
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= int8_ops
    details = interp.get_output_details()
    assert [d["dtype"] for d in details] == [np.float32, np.float32]  # float outputs, like the plain int8 export's
    ela_value, = [v for v in run_tflite(quantised, images) if v.shape == images.shape]
    assert_same(ela_value, reference(images, params))  # the 0..255 map as it is
