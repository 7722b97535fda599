"""A training run killed with SIGKILL resumes from its last finished epoch when started again with
the same command, and ends exactly where an uninterrupted run ends."""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, error_lines, run_cli
from train.configs import get_config, with_fields

EPOCHS = 30  # enough for the kill to land well before the end
TINY = ("--alpha", "0.25", "--input_size", "64", "--weights", "none", "--max_per_source", "16",
        "--batch_size", "8", "--learning_rate", "1e-3")


def tf_checkpoint_complete(folder) -> bool:
    return (folder / "checkpoint").is_file() and bool(list(folder.glob("ckpt-*.index")))


@pytest.fixture(scope="module")
def killed_run(demo_data, tmp_path_factory):
    """A run folder of `python -m train` killed with SIGKILL right after its first backup."""
    out = tmp_path_factory.mktemp("killed") / "run"
    proc = subprocess.Popen([sys.executable, "-m", "train", "--data", str(demo_data), "--out", str(out), *TINY,
                             "--epochs", str(EPOCHS)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    # the manager's state file is written last, once a backup is complete: what a resumed run reads
    while not tf_checkpoint_complete(out / "backup"):
        assert proc.poll() is None and time.time() < deadline, "training ended or stalled before its first backup"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and not (out / "model.keras").exists()
    return out


@pytest.fixture(scope="module")
def uninterrupted(demo_data, tmp_path_factory):
    from train.run import train_run
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", max_per_source=16,
                              batch_size=8, learning_rate=1e-3, epochs=EPOCHS)
    return json.loads((train_run(cfg, demo_data, tmp_path_factory.mktemp("whole") / "run") / "config.json").read_text())


def test_killed_run_resumes_and_ends_like_an_uninterrupted_one(demo_data, tmp_path, killed_run, uninterrupted):
    out = shutil.copytree(killed_run, tmp_path / "run")

    other = run_cli("train", "--data", str(demo_data), "--out", str(out), *TINY, "--epochs", str(EPOCHS + 1))
    assert other.returncode == 2
    (line,) = error_lines(other)
    assert str(out) in line and "interrupted run with another config" in line and "--overwrite" in line

    resumed = run_cli("train", "--data", str(demo_data), "--out", str(out), *TINY, "--epochs", str(EPOCHS))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resume_line,) = [line for line in resumed.stdout.splitlines() if line.startswith("resuming ")]
    done = int(resume_line.split(" from epoch ")[1].split()[0])
    assert resume_line.startswith(f"resuming {out} from epoch {done}") and 1 <= done < EPOCHS

    with open(out / "history.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(EPOCHS))
    summary = json.loads((out / "config.json").read_text())
    assert summary["result"]["optimizer_iterations"] == EPOCHS * summary["training"]["steps_per_epoch"] == EPOCHS * 8
    assert not (out / "backup").exists() and (out / "model.keras").is_file()
    # the same batches, the restored optimizer state and the best epoch before the kill: the same model
    assert summary["result"]["weights_sha256"] == uninterrupted["result"]["weights_sha256"]
    assert summary["result"]["val_loss"] == uninterrupted["result"]["val_loss"]


def test_overwrite_starts_an_interrupted_run_afresh(demo_data, tmp_path, killed_run):
    out = shutil.copytree(killed_run, tmp_path / "run")
    fresh = run_cli("train", "--data", str(demo_data), "--out", str(out), *TINY, "--epochs", "2", "--overwrite")
    assert fresh.returncode == 0 and "resuming" not in fresh.stdout
    with open(out / "history.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    assert json.loads((out / "config.json").read_text())["result"]["optimizer_iterations"] == 2 * 8


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])  # `fakelens` trains in bfloat16
def test_experts_killed_in_their_second_tail_resume_and_end_like_an_uninterrupted_run(demo_data, tmp_path, precision):
    """The first tail (finished) is read back, the second resumes from its last backup."""
    from train.run import train_run
    out = tmp_path / "run"
    second = out / "experts" / "sd21_faces"
    command = ["--data", str(demo_data), "--out", str(out), *TINY, "--epochs", str(EPOCHS), "--experts",
               "--set", f"optim.precision={precision}"]
    proc = subprocess.Popen([sys.executable, "-m", "train", *command], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not tf_checkpoint_complete(second / "backup"):
        assert proc.poll() is None and time.time() < deadline, "training ended or stalled before the second tail"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and (out / "experts" / "gan_faces" / "expert.weights.h5").is_file()

    resumed = run_cli("train", *command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resume_line,) = [line for line in resumed.stdout.splitlines() if line.startswith("resuming ")]
    done = int(resume_line.split(" (")[1].split()[0])
    assert resume_line == f"resuming {out} ({done} epochs of its tails done)" and EPOCHS < done < 2 * EPOCHS
    with open(second / "history.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(EPOCHS))
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", max_per_source=16,
                      batch_size=8, learning_rate=1e-3, epochs=EPOCHS, experts=True, precision=precision)
    whole = json.loads((train_run(cfg, demo_data, tmp_path / "whole") / "config.json").read_text())
    summary = json.loads((out / "config.json").read_text())
    assert summary["config"]["optim"]["precision"] == whole["config"]["optim"]["precision"] == precision
    assert summary["result"]["weights_sha256"] == whole["result"]["weights_sha256"]
    untimed = [{source: {k: v for k, v in result.items() if k != "fit_s"} for source, result in run["experts"].items()}
               for run in (summary, whole)]
    assert untimed[0] == untimed[1] and set(untimed[0]) == {"gan_faces", "sd21_faces"}
