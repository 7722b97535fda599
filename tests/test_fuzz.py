"""A seeded fuzz corpus: over 1,000 files mutated from valid seeds (bit flips, truncations,
insertions, deletions, header swaps, huge declared sizes) for JPEG, PNG, WebP, GIF, the manifest
CSV and .tflite files with and without metadata. Each must give a result or FakeLens' own error
(the one-line kind), never another exception, a crash or a hang; plus property-based tests of
the parsers that read files: the manifest, the model metadata and `Preprocessing.from_dict`."""
from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ela import ImageError, Preprocessing, read_image
from tests.conftest import ROOT, run_cli
from tests.test_bad_inputs import photo
from train.data import DataError, load_manifest

PER_FILE_SECONDS = 5.0  # far above any legitimate decode of these small files
MUTANTS_PER_IMAGE_SEED = 120
MUTANTS_PER_TEXT_SEED = 150
MUTANTS_PER_MODEL_SEED = 80


def encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img = photo(3, 40)
    (img.convert("P") if fmt == "GIF" else img).save(buf, fmt, **kw)
    return buf.getvalue()


IMAGE_SEEDS = {
    "baseline.jpg": lambda: encoded("JPEG", quality=90),
    "progressive.jpg": lambda: encoded("JPEG", quality=80, progressive=True),
    "rgb.png": lambda: encoded("PNG"),
    "lossy.webp": lambda: encoded("WEBP", quality=80),
    "palette.gif": lambda: encoded("GIF"),
}
HEADERS = [encoded("JPEG")[:16], encoded("PNG")[:16], encoded("WEBP")[:16], encoded("GIF")[:16]]


def huge_declared_size(data: bytes) -> bytes:
    """The same file claiming an enormous canvas (checksums fixed where the format has them),
    the classic way to make a decoder allocate gigabytes."""
    out = bytearray(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # IHDR at offset 8: length, type, width, height, ..., CRC
        out[16:24] = struct.pack(">II", 0x7FFFFFF0, 0x7FFFFFF0)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif data[:2] == b"\xff\xd8":  # the first SOFn segment: height and width after the precision byte
        for i in range(2, len(data) - 9):
            if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2):
                out[i + 5:i + 9] = struct.pack(">HH", 65500, 65500)
                break
    elif data[:3] == b"GIF":  # logical screen size
        out[6:10] = struct.pack("<HH", 65535, 65535)
    elif data[:4] == b"RIFF":  # VP8/VP8L/VP8X dimensions live at different places: overwrite them all
        out[26:30] = b"\xff\x3f\xff\x3f"
    return bytes(out)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation of `data`, drawn from `rng` (so the corpus is the same every run)."""
    kind = rng.integers(6)
    pos = int(rng.integers(len(data)))
    if kind == 0:  # bit flips
        out = bytearray(data)
        for i in rng.integers(len(data), size=int(rng.integers(1, 9))):
            out[i] ^= 1 << int(rng.integers(8))
        return bytes(out)
    if kind == 1:  # truncation
        return data[:pos]
    if kind == 2:  # insertion of random bytes
        return data[:pos] + rng.bytes(int(rng.integers(1, 64))) + data[pos:]
    if kind == 3:  # deletion of a span
        return data[:pos] + data[pos + int(rng.integers(1, 64)):]
    if kind == 4:  # another format's header
        return HEADERS[int(rng.integers(len(HEADERS)))] + data[16:]
    return huge_declared_size(data)


def corpus(seeds: dict[str, bytes], per_seed: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    return [(f"{i:04d}_{name}", mutate(data, rng)) for name, data in seeds.items() for i in range(per_seed)]


def timed(fn, *args):
    start = time.perf_counter()
    try:
        return fn(*args), None, time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - the test sorts expected from unexpected errors
        return None, err, time.perf_counter() - start


def test_fuzzed_images_decode_or_give_one_image_error(tmp_path):
    files = corpus({name: make() for name, make in IMAGE_SEEDS.items()}, MUTANTS_PER_IMAGE_SEED, seed=1)
    prep = Preprocessing(32)
    outcomes, slow, unexpected = {"image": 0, "error": 0}, [], []
    for name, data in files:
        path = tmp_path / name
        path.write_bytes(data)
        result, err, seconds = timed(lambda p: prep.apply(*read_image(p)), path)
        if seconds > PER_FILE_SECONDS:
            slow.append((name, seconds))
        if err is None and result.shape == (32, 32, 3) and result.dtype == np.uint8:
            outcomes["image"] += 1
        elif isinstance(err, ImageError) and str(path) in str(err) and "\n" not in str(err):
            outcomes["error"] += 1
        else:
            unexpected.append((name, repr(err)))
    assert not unexpected, unexpected[:10]
    assert not slow, slow[:10]
    assert len(files) >= 600 and min(outcomes.values()) > 50, outcomes  # the corpus exercises both paths


def test_fuzzed_manifests_load_or_give_one_data_error(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    seeds = {"manifest.csv": b"path,label,source,split\nimg0.png,real,cam,train\nimg1.png,fake,gan,val\n"
                             b"img2.png,fake,gan,test\n",
             "hashed.csv": b"\xef\xbb\xbfpath,label,source\r\n\"img0.png\",Real,cam\r\nimg1.png,FAKE,gan\r\n"}
    files = corpus(seeds, MUTANTS_PER_TEXT_SEED, seed=2)
    outcomes, unexpected = {"records": 0, "error": 0}, []
    for name, data in files:
        path = tmp_path / name
        path.write_bytes(data)
        records, err, seconds = timed(load_manifest, path)
        assert seconds < PER_FILE_SECONDS, name
        if err is None and records and all(r.label in ("real", "fake") for r in records):
            outcomes["records"] += 1
        elif isinstance(err, DataError) and "\n" not in str(err):
            outcomes["error"] += 1
        else:
            unexpected.append((name, repr(err)))
    assert not unexpected, unexpected[:10]
    assert min(outcomes.values()) > 20, outcomes


MODEL_CHECK = """
import json, sys, time

from convert.metadata import MetadataError, read_model_info
from convert.runtime import TfliteModel
from ela.files import FileProblem
for path in sys.argv[1:]:
    start = time.perf_counter()
    outcome = {}
    for step, fn in (("info", read_model_info), ("interpreter", TfliteModel)):
        try:
            fn(path)
            outcome[step] = "ok"
        except (MetadataError, FileProblem) as err:
            outcome[step] = "error" if "\\n" not in str(err) and path in str(err) else "bad message: " + str(err)
        except Exception as err:
            outcome[step] = "unexpected: " + repr(err)
    outcome["seconds"] = time.perf_counter() - start
    print(json.dumps([path, outcome]), flush=True)
"""


@functools.lru_cache(maxsize=None)
def tiny_models(seed: int = 0) -> dict[str, bytes]:
    """A 32-px two-class classifier with weights drawn from `seed` (so the corpus mutated from it
    is the same in every run), bare and with FakeLens metadata."""
    import tensorflow as tf
    import tf_keras

    from convert.metadata import ModelInfo, write_metadata
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input((32, 32, 3))
    features = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(4, 3)(inputs))
    bare = tf.lite.TFLiteConverter.from_keras_model(
        tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="softmax")(features))).convert()
    return {"bare.tflite": bare, "fakelens.tflite": write_metadata(bare, ModelInfo("fuzz", Preprocessing(32)))}


@pytest.fixture(scope="module")
def model_seeds() -> dict[str, bytes]:
    return tiny_models()


def test_fuzzed_models_load_or_give_one_metadata_error(tmp_path, model_seeds):
    """In a child process, so that a crash in the native interpreter shows as a failure naming
    the file instead of taking the test session down."""
    files = corpus(model_seeds, MUTANTS_PER_MODEL_SEED, seed=3)
    paths = []
    for name, data in files:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    proc = subprocess.run([sys.executable, "-c", MODEL_CHECK, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, f"crashed after {len(rows)} files, at {paths[len(rows)] if len(rows) < len(paths) else '?'}: {proc.stderr[-2000:]}"
    assert [path for path, _ in rows] == paths
    bad = [(Path(p).name, o) for p, o in rows if any(str(v).startswith(("unexpected", "bad")) for v in o.values())]
    assert not bad, bad[:10]
    assert max(o["seconds"] for _, o in rows) < PER_FILE_SECONDS
    loaded = sum(o["info"] == "ok" for _, o in rows)
    assert 0 < loaded < len(rows)  # some mutants (in weights) still load, most do not


def test_predict_on_a_fuzzed_folder_gives_a_row_per_file_and_no_traceback(tmp_path, model_seeds):
    model = tmp_path / "model.tflite"
    model.write_bytes(model_seeds["fakelens.tflite"])
    folder = tmp_path / "photos"
    folder.mkdir()
    files = corpus({name: make() for name, make in IMAGE_SEEDS.items()}, 30, seed=4)
    for name, data in files:
        (folder / name).write_bytes(data)
    proc = run_cli("benchmark.predict", "--model", str(model), "--format", "json", str(folder))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert len(rows) == len(files)
    assert all((r["error"] is None) != (r["p_fake"] is None) for r in rows)
    assert 0 < sum(r["error"] is None for r in rows) < len(rows)


# --- property-based: the parsers of what files hold ---------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                    max_leaves=20)
PREP_KEYS = st.sampled_from(["schema_version", "input_size", "resize", "ela", "format_control", "quality", "scale",
                             "resolution", "quality_min", "quality_max"])


def near_valid_preprocessing() -> st.SearchStrategy:
    """Dicts shaped like `Preprocessing.to_dict()` with any of their values replaced."""
    base = Preprocessing(64).to_dict() | {"ela": {"quality": 90, "scale": "auto", "resolution": "full"},
                                          "format_control": {"quality_min": 70, "quality_max": 95}}
    return st.fixed_dictionaries({k: st.just(v) | JSON for k, v in base.items()})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(near_valid_preprocessing(), st.dictionaries(PREP_KEYS, JSON), JSON))
def test_preprocessing_from_dict_returns_a_valid_object_or_raises_value_error(d):
    try:
        prep = Preprocessing.from_dict(d)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    assert Preprocessing.from_dict(prep.to_dict()) == prep  # what it accepted, it writes back the same
    assert isinstance(prep.input_size, int) and not isinstance(prep.input_size, bool)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.fixed_dictionaries({"schema_version": st.sampled_from([1, 2]) | JSON, "model_name": JSON,
                                               "preprocessing": st.just(Preprocessing(32).to_dict()) | JSON,
                                               "labels": st.just(["real", "fake"]) | JSON,
                                               "threshold": st.floats() | JSON, "ela_in_graph": JSON, "mirror_average": JSON,
                                               "train_sources": st.just(["gan_faces"]) | JSON,
                                               "extra": st.just({"data_counts": {"a/train": 1}}) | JSON})))
def test_model_info_from_json_returns_a_valid_object_or_raises_metadata_error(d):
    from convert.metadata import MetadataError, ModelInfo
    try:
        info = ModelInfo.from_json(d)
    except MetadataError as err:
        assert "\n" not in str(err)
        return
    assert 0 < info.threshold < 1 and isinstance(info.ela_in_graph, bool) and isinstance(info.mirror_average, bool) and info.labels == ("real", "fake")
    assert isinstance(info.train_sources, tuple) and all(isinstance(s, str) for s in info.train_sources)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.text(max_size=12) | st.sampled_from(["real", "fake", "img0.png", "train", "test"]),
                         max_size=6), max_size=6),
       st.lists(st.sampled_from(["path", "label", "source", "split", "sha256", "x"]), max_size=6))
def test_manifest_parser_returns_records_or_raises_data_error(tmp_path_factory, rows, header):
    import csv
    folder = tmp_path_factory.mktemp("m", numbered=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "img0.png")
    with open(folder / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    try:
        records = load_manifest(folder / "m.csv")
    except DataError as err:
        assert "\n" not in str(err)
        return
    assert all(r.label in ("real", "fake") and r.split in ("train", "val", "test") for r in records)
