"""Bad inputs at every stage, generated here (no binary fixtures): each must end in one `error:` line
that names the file and what to do (exit 2, no traceback), or, for a single unreadable image during
training or benchmarking, be skipped, listed in skipped.csv and counted while the run completes.
Images that are unusual but valid (CMYK, 16-bit, palette, alpha, EXIF-rotated, 1×1) must load."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ela import ElaParams, ImageError, Preprocessing, read_image
from tests.conftest import error_lines, run_cli
from train.data import DataError, load_manifest, load_records, preprocess_records, scan_folders
from train.demo_data import synthetic_image

OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(seed: int = 0, size: int = 48, style: str = "noise") -> Image.Image:
    return Image.fromarray(synthetic_image(np.random.RandomState(seed), size, style))


def over_bomb_limit() -> bytes:
    """A blank 1-bit PNG with more pixels than Pillow ever decodes (2 × MAX_IMAGE_PIXELS): a few KB."""
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 100
    return encode(Image.new("1", (side, side)), "PNG")


def assert_one_line_error(proc, *names: str | Path, words: str = "") -> str:
    """Exit 2, no traceback, exactly one `error:` line naming every one of `names`."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = error_lines(proc)
    for name in names:
        assert str(name) in line, line
    assert words in line, line
    return line


# --- single image files -------------------------------------------------------------------------

UNREADABLE = {  # file name → (its bytes, words the message must contain)
    "empty.jpg": (lambda: b"", "empty file"),
    "truncated.jpg": (lambda: encode(photo(size=128), "JPEG", quality=90)[:700], "truncated"),
    "truncated.png": (lambda: encode(photo(size=128), "PNG")[:900], "truncated"),
    "notes.jpg": (lambda: b"shopping list: milk, eggs\n", "not an image"),
    "iphone.png": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(300), "not an image"),
    "huge.png": (over_bomb_limit, "too many pixels"),
}


@pytest.mark.parametrize("name", UNREADABLE)
def test_unreadable_image_is_an_image_error_naming_the_file(tmp_path, name):
    make, words = UNREADABLE[name]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(ImageError, match=words) as info:
        read_image(path)
    assert str(path) in str(info.value) and " — " in str(info.value)  # the file, then what to do


def test_image_over_a_lowered_pixel_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(encode(photo(size=100), "PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40)  # 100×100 is over twice the limit
    with pytest.raises(ImageError, match="too many pixels") as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("where,words", [("missing.jpg", "no such file"), ("folder.jpg", "is a directory"),
                                         ("a.png/b.png", "cannot be read")])
def test_unreadable_path_is_an_image_error_naming_it(tmp_path, where, words):
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "a.png").write_bytes(encode(photo(), "PNG"))
    with pytest.raises(ImageError, match=words) as info:
        read_image(tmp_path / where)
    assert str(tmp_path / where) in str(info.value)


def halves(mode: str, left, right, size=(40, 20)) -> Image.Image:
    """A `size` image in `mode` whose left half is `left` and right half `right`."""
    img = Image.new(mode, size, left)
    img.paste(Image.new(mode, (size[0] // 2, size[1]), right), (size[0] // 2, 0))
    return img


def palette_with_transparency() -> bytes:
    img = Image.new("P", (40, 20), 0)
    img.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    img.paste(1, (20, 0, 40, 20))
    return encode(img, "PNG", transparency=0)  # index 0 (the left half) is transparent


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    return encode(halves("RGB", (250, 0, 0), (0, 0, 250)), "JPEG", quality=95, exif=exif.tobytes())


LOADABLE = {  # file name → (its bytes, expected (height, width), left/top colour, right/bottom colour)
    "cmyk.jpg": (lambda: encode(halves("RGB", (250, 0, 0), (0, 0, 250)).convert("CMYK"), "JPEG", quality=95),
                 (20, 40), (250, 0, 0), (0, 0, 250)),
    "16bit.png": (lambda: encode(halves("I;16", 65535, 32896), "PNG"), (20, 40), (255,) * 3, (128,) * 3),
    "palette.png": (palette_with_transparency, (20, 40), (255,) * 3, (0, 200, 0)),
    "rgba.png": (lambda: encode(halves("RGBA", (0, 0, 0, 0), (200, 0, 0, 255)), "PNG"), (20, 40), (255,) * 3,
                 (200, 0, 0)),
    "grey.png": (lambda: encode(halves("L", 30, 200), "PNG"), (20, 40), (30,) * 3, (200,) * 3),
    "grey_alpha.png": (lambda: encode(halves("LA", (30, 0), (90, 255)), "PNG"), (20, 40), (255,) * 3, (90,) * 3),
    "rotated.jpg": (exif_rotated, (40, 20), (250, 0, 0), (0, 0, 250)),  # left half ends up on top
    "dot.png": (lambda: encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), (1, 1), (10, 20, 30), (10, 20, 30)),
}


@pytest.mark.parametrize("name", LOADABLE)
def test_unusual_but_valid_image_becomes_8_bit_rgb(tmp_path, name):
    make, shape, first, second = LOADABLE[name]
    path = tmp_path / name
    path.write_bytes(make())
    img, sha = read_image(path)
    rgb = np.asarray(img)
    assert img.mode == "RGB" and rgb.shape == shape + (3,) and rgb.dtype == np.uint8
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    if name == "rotated.jpg":  # 90° clockwise: the left half is now the top half
        first_half, second_half = rgb[:shape[0] // 2], rgb[shape[0] // 2:]
    else:
        first_half, second_half = rgb[:, :(shape[1] + 1) // 2], rgb[:, shape[1] // 2:]
    assert np.abs(first_half.reshape(-1, 3).mean(0) - first).max() <= 6, first_half.reshape(-1, 3).mean(0)
    assert np.abs(second_half.reshape(-1, 3).mean(0) - second).max() <= 6, second_half.reshape(-1, 3).mean(0)
    for prep in (Preprocessing(32), Preprocessing(32, ela=ElaParams(resolution="full"))):
        x = prep.load(path)
        assert x.shape == (32, 32, 3) and x.dtype == np.uint8


def test_a_one_pixel_image_is_resized_up_to_the_model_input(tmp_path):
    path = tmp_path / "dot.png"
    path.write_bytes(LOADABLE["dot.png"][0]())
    assert (Preprocessing(32).load(path) == (10, 20, 30)).all()


# --- datasets and manifests ---------------------------------------------------------------------

def write_csv(path: Path, rows, header=("path", "label", "source")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


MANIFEST_MISTAKES = {  # case → (header, rows, words the message must contain)
    "missing column": (("path", "label"), [["a.png", "real"]], "missing column(s) source"),
    "empty file": (None, [], "missing column(s) path, label, source"),
    "unknown label": (("path", "label", "source"), [["a.png", "maybe", "s"]], "unknown label 'maybe'"),
    "short row": (("path", "label", "source"), [["a.png", "real"]], "fewer fields"),
    "duplicate row": (("path", "label", "source"), [["a.png", "real", "s"], ["a.png", "real", "s"]],
                      "duplicate row"),
    "duplicate by another spelling": (("path", "label", "source"), [["a.png", "real", "s"], ["./a.png", "fake", "s"]],
                                      "duplicate row"),
    "escapes the root": (("path", "label", "source"), [["../a.png", "real", "s"]], "outside the dataset root"),
    "unknown split": (("path", "label", "source", "split"), [["a.png", "real", "s", "holdout"]], "unknown split"),
    "no rows": (("path", "label", "source"), [], "no rows"),
}


@pytest.mark.parametrize("case", MANIFEST_MISTAKES)
def test_manifest_mistake_names_the_manifest_and_the_fix(tmp_path, case):
    header, rows, words = MANIFEST_MISTAKES[case]
    (tmp_path / "a.png").write_bytes(encode(photo(), "PNG"))
    manifest = write_csv(tmp_path / "MANIFEST.csv", rows, header)
    with pytest.raises(DataError) as info:
        load_records(tmp_path)
    assert words in str(info.value) and str(manifest) in str(info.value) and " — " in str(info.value)


def test_absolute_path_in_manifest_is_refused_even_inside_the_root(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(photo(), "PNG"))
    manifest = write_csv(tmp_path / "m.csv", [[str(tmp_path / "a.png"), "real", "s"]])
    with pytest.raises(DataError, match="use paths relative to it") as info:
        load_manifest(manifest)
    assert str(tmp_path / "a.png") in str(info.value)


def test_manifest_that_is_not_text_and_manifest_that_is_absent(tmp_path):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(encode(photo(), "JPEG"))
    with pytest.raises(DataError, match="not a UTF-8 text CSV") as info:
        load_records(picture)  # --data pointed at an image instead of a manifest
    assert str(picture) in str(info.value)
    with pytest.raises(DataError, match="no such manifest"):
        load_manifest(tmp_path / "absent.csv")


def test_manifest_saved_by_a_spreadsheet_with_a_byte_order_mark_loads(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(photo(), "PNG"))
    (tmp_path / "m.csv").write_bytes("\ufeffpath,label,source\r\na.png,Real,cam\r\n".encode("utf-8"))
    (record,) = load_manifest(tmp_path / "m.csv")
    assert record.path == tmp_path / "a.png" and record.label == "real" and record.source == "cam"


def test_manifest_row_for_a_missing_file_is_skipped_not_fatal(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(photo(), "PNG"))
    manifest = write_csv(tmp_path / "m.csv", [["a.png", "real", "s"], ["gone.png", "fake", "s"]])
    records = load_manifest(manifest)
    x, y, kept, skipped = preprocess_records(records, Preprocessing(32), "test")
    assert x.shape == (1, 32, 32, 3) and [r.path.name for r in kept] == ["a.png"]
    assert [s.path for s in skipped] == [tmp_path / "gone.png"] and "no such file" in skipped[0].reason


@pytest.mark.parametrize("layout,words", [("empty", "no MANIFEST.csv and no real/ or fake/ folder here"),
                                          ("loose images", "no MANIFEST.csv and no real/ or fake/ folder here"),
                                          ("absent", "no such dataset")])
def test_folder_that_is_not_a_dataset(tmp_path, layout, words):
    data = tmp_path / "data"
    if layout != "absent":
        data.mkdir()
    if layout == "loose images":  # neither a manifest nor one folder per source
        for i in range(3):
            (data / f"img{i}.jpg").write_bytes(encode(photo(i), "JPEG"))
    with pytest.raises(DataError, match=words) as info:
        load_records(data)
    assert str(data) in str(info.value) and " — " in str(info.value)
    if layout != "absent":
        with pytest.raises(DataError, match="source folder not found"):
            scan_folders(data, {"cam": "real"})


# --- run folders and weights --------------------------------------------------------------------

def test_weights_file_that_is_not_weights_is_a_weights_error(tmp_path, monkeypatch):
    from train.model import WeightsError, build_model
    garbage = tmp_path / "weights.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(WeightsError, match="cannot be loaded") as info:
        build_model(32, 0.25, weights=str(garbage))
    assert str(garbage) in str(info.value)
    # an interrupted download left in Keras' cache: named, with what to do
    monkeypatch.setenv("HOME", str(tmp_path))
    cached = tmp_path / ".keras" / "models" / "mobilenet_2_5_224_tf_no_top.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(WeightsError, match="delete or replace the file") as info:
        build_model(32, 0.25, weights="imagenet")
    assert str(cached) in str(info.value)


# --- the whole pipeline on a dataset with bad files in every split -------------------------------

FIFO = "fifo"  # in BAD_IN_DATASET: a named pipe, which a plain read would wait on forever

BAD_IN_DATASET = {  # manifest path → (split, bytes, None for a missing file or FIFO, words in skipped.csv)
    "real_ciplab/cut.jpg": ("train", lambda: encode(photo(size=128), "JPEG", quality=90)[:700], "truncated"),
    "gan_faces/missing.jpg": ("train", None, "no such file"),
    "gan_faces/notes.jpg": ("val", lambda: b"not a picture", "not an image"),
    "real_ciplab/empty.jpg": ("test", lambda: b"", "empty file"),
    "gan_faces/huge.png": ("test", over_bomb_limit, "too many pixels"),
    "real_ciplab/pipe.jpg": ("train", FIFO, "is a named pipe"),
    "gan_faces/pipe.png": ("test", FIFO, "is a named pipe"),
}
ODD_BUT_VALID = {"real_ciplab/cmyk.jpg": "cmyk.jpg", "gan_faces/16bit.png": "16bit.png",
                 "real_ciplab/dot.png": "dot.png", "gan_faces/palette.png": "palette.png"}


def make_dataset(root: Path, splits=(("train", 6), ("val", 3), ("test", 4)), with_bad_files=True) -> Path:
    """real_ciplab (noisy JPEGs) and gan_faces (checkered JPEGs) at 48 px with explicit splits,
    plus, optionally, the bad and the odd-but-valid files above."""
    rows = []
    for source, label, style in (("real_ciplab", "real", "noise"), ("gan_faces", "fake", "checker")):
        (root / source).mkdir(parents=True, exist_ok=True)
        i = 0
        for split, count in splits:
            for _ in range(count):
                name = f"{source}/{i:02d}.jpg"
                (root / name).write_bytes(encode(photo(100 * len(rows) + i, 48, style), "JPEG", quality=92))
                rows.append([name, label, source, split])
                i += 1
    if with_bad_files:
        for name, (split, make, _) in BAD_IN_DATASET.items():
            if make == FIFO:
                os.mkfifo(root / name)
            elif make is not None:
                (root / name).write_bytes(make())
            rows.append([name, "real" if name.startswith("real") else "fake", name.split("/")[0], split])
        for name, sample in ODD_BUT_VALID.items():
            (root / name).write_bytes(LOADABLE[sample][0]())
            rows.append([name, "real" if name.startswith("real") else "fake", name.split("/")[0], "train"])
    write_csv(root / "MANIFEST.csv", rows, ("path", "label", "source", "split"))
    return root


def snapshot(folder: Path) -> dict:
    """Every entry under `folder`: kind, size, modification time and content hash."""
    state = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return state


TINY_TRAIN = ("--config", "gan", "--alpha", "0.25", "--input_size", "32", "--epochs", "1", "--batch_size", "8")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    """train → convert → benchmark through the CLI on a small dataset holding bad files in every split."""
    tmp = tmp_path_factory.mktemp("pipeline")
    data = make_dataset(tmp / "data")
    before = snapshot(data)
    run, report = tmp / "run", tmp / "report"
    train = run_cli("train", *TINY_TRAIN, "--weights", "none", "--data", str(data), "--out", str(run))
    assert train.returncode == 0, train.stderr[-3000:]
    convert = run_cli("convert", "--run", str(run), "--variants", "float32", "--check_images", "4")
    assert convert.returncode == 0, convert.stderr[-3000:]
    model = run / "export" / "run_float32.tflite"
    bench = run_cli("benchmark", "--models", str(model), "--data", str(data), "--out", str(report),
                    "--latency_runs", "2", "--threads", "1")
    assert bench.returncode == 0, bench.stderr[-3000:]
    return {"data": data, "before": before, "after": snapshot(data), "run": run, "model": model, "report": report,
            "train": train, "benchmark": bench, "tmp": tmp}


def skipped_rows(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


def test_training_skips_unreadable_images_lists_and_counts_them(pipeline):
    data = pipeline["data"]
    skipped = skipped_rows(pipeline["run"] / "skipped.csv")
    expected = {str(data / name): words for name, (split, _, words) in BAD_IN_DATASET.items() if split != "test"}
    assert set(skipped) == set(expected)  # the odd-but-valid images were used, not skipped
    for path, words in expected.items():
        assert words in skipped[path] and path in skipped[path]
    assert f"{len(expected)} of " in pipeline["train"].stdout and "skipped" in pipeline["train"].stdout
    summary = json.loads((pipeline["run"] / "config.json").read_text())
    assert summary["data"]["skipped"] == len(expected)
    assert summary["result"]["n_train"] == 2 * 6 + len(ODD_BUT_VALID)


def test_benchmark_skips_unreadable_images_lists_and_counts_them(pipeline):
    data = pipeline["data"]
    skipped = skipped_rows(pipeline["report"] / "skipped.csv")
    expected = {str(data / name): words for name, (split, _, words) in BAD_IN_DATASET.items() if split == "test"}
    assert set(skipped) == set(expected)
    for path, words in expected.items():
        assert words in skipped[path]
    assert f"{len(expected)} image(s) could not be read and were skipped" in pipeline["benchmark"].stdout
    result = json.loads((pipeline["report"] / "benchmark.json").read_text())
    assert result["models"]["run_float32"]["sets"]["GAN"]["n"] == 2 * 4  # the readable test images of each class


def test_input_folder_is_never_written(pipeline):
    assert pipeline["after"] == pipeline["before"]
    assert len(pipeline["before"]) > 30


# --- command-line mistakes: one line, exit 2, no traceback --------------------------------------

def test_train_split_with_a_single_class(tmp_path):
    data = make_dataset(tmp_path / "data", with_bad_files=False)
    header, *rows = csv.reader((data / "MANIFEST.csv").read_text().splitlines())
    write_csv(data / "MANIFEST.csv", [r for r in rows if not (r[2] == "gan_faces" and r[3] == "train")], header)
    proc = run_cli("train", *TINY_TRAIN, "--weights", "none", "--data", str(data), "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, data, words="the train split of real_ciplab, gan_faces has a single class")
    assert not (tmp_path / "run").exists()


def test_train_without_imagenet_weights_offline(pipeline, tmp_path):
    """No weights in Keras' cache (an empty HOME) and no network (a proxy that refuses): the
    download fails at once and the message names the missing file and where it belongs."""
    home = tmp_path / "home"
    home.mkdir()
    proc = run_cli("train", *TINY_TRAIN, "--weights", "imagenet", "--data", str(pipeline["data"]),
                   "--out", str(tmp_path / "run"), env=dict(OFFLINE, HOME=str(home)))
    assert_one_line_error(proc, "mobilenet_2_5_224_tf_no_top.h5", home / ".keras" / "models",
                          words="could not be downloaded")


def test_train_output_under_a_regular_file(pipeline, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    proc = run_cli("train", *TINY_TRAIN, "--weights", "none", "--data", str(pipeline["data"]),
                   "--out", str(blocker / "run"))
    assert_one_line_error(proc, blocker)
    assert blocker.read_text() == "a file, not a folder"


def test_convert_run_from_an_incompatible_version(pipeline, tmp_path):
    old = tmp_path / "old_run"
    old.mkdir()
    shutil.copy(pipeline["run"] / "model.keras", old / "model.keras")
    summary = json.loads((pipeline["run"] / "config.json").read_text())
    summary["config"]["model"]["unfrozen_layers"] = summary["config"]["model"].pop("unfreeze")  # a renamed field
    (old / "config.json").write_text(json.dumps(summary))
    proc = run_cli("convert", "--run", str(old))
    assert_one_line_error(proc, old / "config.json", words="incompatible FakeLens version")


@pytest.mark.parametrize("damage,words", [
    ("no model.keras", "no model.keras"),
    ("config.json not JSON", "not valid JSON"),
    ("config.json without data", "incompatible FakeLens version"),
    ("model.keras damaged", "cannot be loaded"),
])
def test_damaged_run_folder_is_a_run_error(pipeline, tmp_path, damage, words):
    from train.run_folder import RunError, load_run
    run = tmp_path / "run"
    run.mkdir()
    summary = json.loads((pipeline["run"] / "config.json").read_text())
    if damage == "config.json without data":
        del summary["data"]
    (run / "config.json").write_text("{ half a file" if damage == "config.json not JSON" else json.dumps(summary))
    if damage == "model.keras damaged":
        (run / "model.keras").write_bytes((pipeline["run"] / "model.keras").read_bytes()[:2000])
    elif damage != "no model.keras":
        shutil.copy(pipeline["run"] / "model.keras", run / "model.keras")
    with pytest.raises(RunError, match=words) as info:
        load_run(run)
    assert str(run) in str(info.value)


def test_convert_output_under_a_regular_file(pipeline, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    proc = run_cli("convert", "--run", str(pipeline["run"]), "--variants", "float32", "--check_images", "2",
                   "--out", str(blocker / "export"))
    assert_one_line_error(proc, blocker / "export", words=f"{blocker} is a file")


def test_benchmark_output_on_a_virtual_file_system(pipeline):
    out = Path("/proc/fakelens_report")
    proc = run_cli("benchmark", "--models", str(pipeline["model"]), "--data", str(pipeline["data"]),
                   "--out", str(out), "--latency_runs", "1", "--threads", "1")
    assert_one_line_error(proc, out, words="choose another output path")


def test_benchmark_data_that_does_not_exist(pipeline, tmp_path):
    proc = run_cli("benchmark", "--models", str(pipeline["model"]), "--data", str(tmp_path / "nowhere"),
                   "--out", str(tmp_path / "report"))
    assert_one_line_error(proc, tmp_path / "nowhere", words="no such dataset")
    assert not (tmp_path / "report").exists()


def test_benchmark_of_two_models_with_the_same_name_names_both(pipeline, tmp_path):
    twin = tmp_path / "copy" / pipeline["model"].name
    twin.parent.mkdir()
    shutil.copy(pipeline["model"], twin)
    proc = run_cli("benchmark", "--models", f"{pipeline['model']},{twin}", "--data", str(pipeline["data"]),
                   "--out", str(tmp_path / "report"))
    assert_one_line_error(proc, pipeline["model"], twin, words="are both named 'run_float32'")


# --- model files --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """.tflite files that FakeLens must refuse, each for its own reason."""
    import tensorflow as tf
    import tf_keras
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, writer_utils

    from convert.metadata import ModelInfo, write_metadata
    tmp = tmp_path_factory.mktemp("models")
    inputs = tf_keras.Input((64, 64, 3))
    outputs = tf_keras.layers.Dense(2, activation="softmax")(tf_keras.layers.GlobalAveragePooling2D()(inputs))
    bare = tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(inputs, outputs)).convert()

    def classifier(units: int, activation: str) -> bytes:
        head = tf_keras.layers.Dense(units, activation=activation)(tf_keras.layers.GlobalAveragePooling2D()(inputs))
        return tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(inputs, head)).convert()
    labels = tmp / "labels.txt"
    labels.write_text("real\nfake\n")
    other_tool = image_classifier.MetadataWriter.create_for_inference(bare, [127.5], [127.5], [str(labels)])
    contents = {
        "bare.tflite": bare,
        "photo.tflite": encode(photo(), "JPEG"),  # a picture renamed
        "empty.tflite": b"",
        "archive.tflite": b"PK\x03\x04 a zip file, not a model",
        "other_tool.tflite": other_tool.populate(),
        "wrong_size.tflite": write_metadata(bare, ModelInfo("m", Preprocessing(96))),
        "cut.tflite": write_metadata(bare, ModelInfo("m", Preprocessing(64)))[:1000],
        "sigmoid.tflite": write_metadata(classifier(1, "sigmoid"), ModelInfo("m", Preprocessing(64))),
        "thousand.tflite": write_metadata(classifier(1000, "softmax"), ModelInfo("m", Preprocessing(64))),
    }
    for name, content in contents.items():
        writer_utils.save_file(content, str(tmp / name))
    (tmp / "folder.tflite").mkdir()
    return {name: tmp / name for name in (*contents, "folder.tflite", "absent.tflite")}


MODEL_MISTAKES = {
    "bare.tflite": "has no TFLite metadata",
    "photo.tflite": "not a TensorFlow Lite model",
    "empty.tflite": "not a TensorFlow Lite model",
    "archive.tflite": "not a TensorFlow Lite model",
    "other_tool.tflite": "has no fakelens.json",
    "wrong_size.tflite": "says 96x96",
    "cut.tflite": "unreadable TensorFlow Lite model",
    "sigmoid.tflite": "not one score per label",
    "thousand.tflite": "not one score per label",
    "folder.tflite": "is a directory",
    "absent.tflite": "no such model file",
}


@pytest.mark.parametrize("name", MODEL_MISTAKES)
def test_model_file_that_is_not_a_fakelens_export(model_files, name):
    from convert.metadata import MetadataError, read_model_info
    with pytest.raises(MetadataError, match=MODEL_MISTAKES[name]) as info:
        read_model_info(model_files[name])
    assert str(model_files[name]) in str(info.value) and " — " in str(info.value)


@pytest.mark.parametrize("stage,name", [("convert", "bare.tflite"), ("convert", "photo.tflite"),
                                        ("convert", "other_tool.tflite"), ("benchmark", "wrong_size.tflite")])
def test_cli_refuses_a_model_that_is_not_a_fakelens_export(model_files, tmp_path, stage, name):
    path = model_files[name]
    args = ["--show", str(path)] if stage == "convert" else ["--models", str(path), "--out", str(tmp_path)]
    assert_one_line_error(run_cli(stage, *args), path, words=MODEL_MISTAKES[name])


def test_debug_shows_the_traceback(model_files):
    proc = run_cli("convert", "--show", str(model_files["photo.tflite"]), "--debug")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "MetadataError" in proc.stderr and not error_lines(proc)


@pytest.mark.parametrize("target", ["fpr=1.5", "fpr=-0.1", "fpr=high", "source_fpr_bound=0", "fpr_bound=1"])
def test_threshold_targets_outside_0_1_are_errors(target):
    from benchmark.metrics import threshold_for
    with pytest.raises(ValueError, match="must be a number in"):
        threshold_for(np.array([0, 1]), np.array([0.2, 0.8]), target)


def test_demo_data_help_prints_help_and_writes_nothing(tmp_path):
    proc = run_cli("train.demo_data", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "FOLDER" in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []
