"""Hostile inputs and concurrent runs: special files and oversized files are refused before a
byte is read (no hang, no memory exhaustion), manifest cells are taken byte-exact and checked,
and two commands never write into one output folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ela import ImageError, Preprocessing, read_image
from ela.files import FileProblem, read_regular
from tests.conftest import ROOT, error_lines, run_cli
from tests.test_bad_inputs import encode, photo, write_csv
from train.data import DataError, load_manifest, load_records, preprocess_records
from train.io import OutputError, output_lock


@pytest.fixture(autouse=True)
def no_hang():
    """A regression here would block forever: fail after 20 s instead."""
    def fail(*_):
        raise TimeoutError("blocked on a special file")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def special_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "x.jpg"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "socket":
        import socket
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    return path


@pytest.mark.parametrize("kind,words", [("fifo", "is a named pipe"), ("directory", "is a directory"),
                                        ("device", "is a device"), ("socket", "is a socket")])
def test_special_files_are_refused_without_reading(tmp_path, kind, words):
    path = special_file(tmp_path, kind)
    with pytest.raises(ImageError, match=words) as info:
        read_image(path)
    assert str(path) in str(info.value) and " — " in str(info.value)


def test_files_over_the_limit_are_refused_and_at_the_limit_read(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 1000)
    assert read_regular(path, 1000) == b"x" * 1000
    with pytest.raises(FileProblem, match="larger than the") as info:
        read_regular(path, 999, "manifest")
    assert str(path) in str(info.value) and "manifest" in str(info.value)


def test_a_symlink_loop_is_a_one_line_error(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(ImageError, match="cannot be read") as info:
        read_image(loop)
    assert str(loop) in str(info.value)


def test_a_fifo_in_a_folder_dataset_is_skipped_and_listed(tmp_path):
    for label in ("real", "fake"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.png").write_bytes(encode(photo(label == "fake"), "PNG"))
    os.mkfifo(tmp_path / "fake" / "pipe.jpg")
    records = load_records(tmp_path)
    assert sorted(r.path.name for r in records) == ["ok.png", "ok.png", "pipe.jpg"]
    _, _, kept, skipped = preprocess_records(records, Preprocessing(32), "all")
    assert len(kept) == 2 and [s.path.name for s in skipped] == ["pipe.jpg"]
    assert "is a named pipe" in skipped[0].reason


@pytest.mark.parametrize("kind,words", [("fifo", "is a named pipe"), ("device", "is a device")])
def test_a_special_file_as_manifest_or_data_is_an_error(tmp_path, kind, words):
    path = special_file(tmp_path, kind)
    for load in (load_manifest, load_records):
        with pytest.raises(DataError, match=words):
            load(path)


def test_manifest_paths_are_byte_exact(tmp_path):
    (tmp_path / "ok9.jpg ").write_bytes(encode(photo(), "JPEG"))  # a trailing space is part of the name
    (record,) = load_manifest(write_csv(tmp_path / "m.csv", [["ok9.jpg ", "real", "s"]]))
    assert record.path.name == "ok9.jpg " and read_image(record.path)[0].size == (48, 48)


@pytest.mark.parametrize("cell,words", [("nothex" * 10 + "abcd", "is not 64 hex digits"),
                                        ("ab" * 31, "is not 64 hex digits")])
def test_manifest_sha256_cells_are_checked(tmp_path, cell, words):
    (tmp_path / "a.jpg").write_bytes(encode(photo(), "JPEG"))
    manifest = write_csv(tmp_path / "m.csv", [["a.jpg", "real", "s", cell]], ("path", "label", "source", "sha256"))
    with pytest.raises(DataError, match=words) as info:
        load_manifest(manifest)
    assert f"{manifest}:2" in str(info.value)


def test_manifest_with_a_huge_field_or_a_nul_byte_names_the_cause(tmp_path):
    huge = tmp_path / "huge.csv"
    huge.write_text("path,label,source\n" + "a" * 200_000 + ".jpg,real,s\n")
    with pytest.raises(DataError, match="unreadable CSV .*field larger than field limit") as info:
        load_manifest(huge)
    assert str(huge) in str(info.value)
    nul = tmp_path / "nul.csv"
    nul.write_text("path,label,source\na\x00b.jpg,real,s\n")
    with pytest.raises(DataError) as info:
        load_manifest(nul)
    assert f"{nul}" in str(info.value) and ("null byte" in str(info.value) or "NUL" in str(info.value))


def test_an_output_lock_refuses_a_second_holder_and_is_free_again_after(tmp_path):
    out = tmp_path / "report"
    with output_lock(out):
        with pytest.raises(OutputError, match=f"another FakeLens command \\(pid {os.getpid()}\\)") as info:
            with output_lock(out):
                pass
        assert str(out) in str(info.value)
    with output_lock(out):  # released on exit
        pass


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from train.io import output_lock\n"
                               f"with output_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(600)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"pid {holder.pid}"):
            with output_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):
        pass


@pytest.mark.parametrize("stage", ["train", "convert", "benchmark"])
def test_a_second_command_on_the_same_output_folder_refuses_at_once(tmp_path, stage):
    signal.alarm(120)  # a subprocess that imports TensorFlow
    out = tmp_path / "out"
    args = {"train": ("--config", "demo", "--data", str(tmp_path / "nowhere"), "--out", str(out)),
            "convert": ("--run", str(tmp_path / "run"), "--out", str(out)),
            "benchmark": ("--models", str(tmp_path / "m.tflite"), "--data", str(tmp_path), "--out", str(out))}
    with output_lock(out):
        proc = run_cli(stage, *args[stage])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert str(out) in line and "another FakeLens command" in line and f"pid {os.getpid()}" in line


@pytest.mark.parametrize("field,value,words", [
    ("ela_in_graph", "false", "ela_in_graph must be true or false"),
    ("mirror_average", 1, "mirror_average must be true or false"),
    ("threshold", 7, "threshold must be a number in (0.0, 1.0)"),
    ("threshold", "0.5", "threshold must be a number in (0.0, 1.0)"),
    ("labels", ["fake", "real"], "labels must be ['real', 'fake']"),
    ("labels", [f"class{i}" for i in range(1000)], "labels must be ['real', 'fake']"),
    ("schema_version", 3, "schema version 3 is not supported"),
    ("preprocessing", {"schema_version": 1, "input_size": 224.0}, "input_size must be an integer"),
    ("train_sources", "gan_faces", "train_sources must be an array of strings"),
    ("train_sources", ["gan_faces", 3], "train_sources must be an array of strings"),
    ("run", None, "run must be a string"),
])
def test_fakelens_json_fields_are_type_and_range_checked(field, value, words):
    from convert.metadata import MetadataError, ModelInfo
    good = ModelInfo("m", Preprocessing(64)).to_json()
    assert ModelInfo.from_json(good) == ModelInfo("m", Preprocessing(64), version=good["version"],
                                                  description="", author="", license="")
    with pytest.raises(MetadataError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        ModelInfo.from_json(dict(good, **{field: value}))


def test_a_folder_name_that_is_not_utf8_is_predicted_and_printed(tmp_path):
    from tests.test_fuzz import IMAGE_SEEDS, tiny_models
    signal.alarm(300)  # builds a model and runs two commands
    folder = tmp_path / os.fsdecode(b"photos\xff")
    folder.mkdir()
    (folder / "a.png").write_bytes(IMAGE_SEEDS["rgb.png"]())
    model = tmp_path / "model.tflite"
    model.write_bytes(tiny_models()["fakelens.tflite"])
    for fmt in ("table", "json"):
        proc = run_cli("benchmark.predict", "--model", str(model), "--format", fmt, str(folder))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout)
    assert row["error"] is None and os.fsencode(row["path"]) == os.fsencode(str(folder / "a.png"))


def test_predict_with_a_fifo_among_the_photos_lists_it_and_draws_the_sheet(tmp_path):
    from tests.test_fuzz import IMAGE_SEEDS, tiny_models
    signal.alarm(300)  # builds a model and runs a command
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(IMAGE_SEEDS["rgb.png"]())
    os.mkfifo(folder / "pipe.jpg")
    model = tmp_path / "model.tflite"
    model.write_bytes(tiny_models()["fakelens.tflite"])
    proc = run_cli("benchmark.predict", "--model", str(model), "--format", "json", "--html", str(tmp_path / "s.html"),
                   str(folder))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = {Path(r["path"]).name: r for r in json.loads(proc.stdout)}
    assert rows["a.png"]["error"] is None and "is a named pipe" in rows["pipe.jpg"]["error"]
    assert "pipe.jpg" in (tmp_path / "s.html").read_text()


def like_a_terminal() -> None:
    """In the child before exec: Ctrl-C's default disposition. A command started in the background
    by a non-interactive shell (as CI may start the tests) inherits SIGINT ignored, and Python then
    never raises KeyboardInterrupt; in a user's terminal it is not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(proc: subprocess.Popen, marker: bytes, timeout: float = 240) -> bytes:
    """Send Ctrl-C (SIGINT) once `marker` appears on the process's stderr; return all of stderr."""
    import threading
    seen, chunks = threading.Event(), []

    def read():
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            chunks.append(chunk)
            if marker in b"".join(chunks[-3:]):
                seen.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(timeout), b"".join(chunks)[-2000:]
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    reader.join(10)
    return b"".join(chunks)


def test_ctrl_c_during_predict_exits_130_and_leaves_no_sheet_or_temporary_file(tmp_path):
    from tests.test_fuzz import IMAGE_SEEDS, tiny_models
    signal.alarm(400)
    folder = tmp_path / "photos"
    folder.mkdir()
    png = IMAGE_SEEDS["rgb.png"]()
    for i in range(3000):
        (folder / f"{i:04d}.png").write_bytes(png)
    model = tmp_path / "model.tflite"
    model.write_bytes(tiny_models()["fakelens.tflite"])
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.predict", "--model", str(model), "--html",
                             str(tmp_path / "sheet.html"), "--format", "json", str(folder)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=like_a_terminal)
    stderr = interrupt_when(proc, b"img/s")
    assert proc.returncode == 130 and b"Traceback" not in stderr, stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no sheet, no .sheet.html.* temporary


def test_ctrl_c_during_benchmark_exits_130_and_leaves_no_report_folder(tmp_path, shared_data):
    from tests.test_fuzz import tiny_models
    signal.alarm(400)
    model = tmp_path / "model.tflite"
    model.write_bytes(tiny_models()["fakelens.tflite"])
    report = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "--models", str(model), "--data", str(shared_data),
                             "--out", str(report)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=like_a_terminal)
    stderr = interrupt_when(proc, b"test images:")
    assert proc.returncode == 130 and b"Traceback" not in stderr, stderr[-2000:]
    assert not report.exists()


def test_a_model_declaring_a_huge_tensor_is_refused_before_allocation():
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from convert.metadata import MetadataError
    from convert.runtime import TfliteModel
    from tests.test_fuzz import tiny_models
    signal.alarm(300)  # builds a model
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tiny_models()["bare.tflite"], 0))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shape = np.array([1, 1 << 16, 1 << 16, 3], np.int32)  # 100 GiB of floats
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(MetadataError, match="its tensors would take .* GiB"):
        TfliteModel(bytes(builder.Output()))
