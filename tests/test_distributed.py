"""tf.distribute training: two workers on this machine train one model in sync, only the chief
writes, and the global batch is split between them (the result equals one process training on
the whole global batch)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, error_lines
from train.configs import get_config, with_fields
from train.distribute import read_tf_config

# Without dropout: each replica draws its own dropout masks, so only dropout-free training can
# equal one process's with the global batch.
TINY = ("--alpha", "0.25", "--input_size", "64", "--weights", "none", "--epochs", "2", "--max_per_source", "16",
        "--batch_size", "8", "--learning_rate", "1e-3", "--dropout", "0")


def tiny_config(**changes):
    cfg = with_fields(get_config("demo"), alpha=0.25, input_size=64, weights="none", epochs=2,
                              max_per_source=16, batch_size=8, learning_rate=1e-3, dropout=0.0)
    return with_fields(cfg, **changes)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def weights_of(run):
    from train.run_folder import load_run
    return load_run(run).model.get_weights()


def fingerprint(log: str) -> str:
    (line,) = [line for line in log.splitlines() if line.startswith("final weights sha256: ")]
    return line.split(": ")[1]


@pytest.fixture(scope="module")
def one_process_global_batch(demo_data, tmp_path_factory):
    """What two workers with batch 8 and linear lr scaling must reproduce: batch 16, lr 2e-3."""
    from train.run import train_run
    return train_run(tiny_config(batch_size=16, learning_rate=2e-3), demo_data,
                     tmp_path_factory.mktemp("ref") / "run")


def start_workers(tmp_path, demo_data, *args) -> list[subprocess.Popen]:
    """Two `python -m train --strategy multi_worker` processes on free local ports, logging to
    tmp_path/worker<i>.log, with --out tmp_path/out<i> and temporary files in tmp_path/tmp."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    (tmp_path / "tmp").mkdir()
    procs = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        with open(tmp_path / f"worker{index}.log", "w") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "train", "--data", str(demo_data), *args,
                                           "--strategy", "multi_worker", "--out", str(tmp_path / f"out{index}")],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
    return procs


def wait_all(procs: list[subprocess.Popen]) -> list[int]:
    try:
        return [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()  # a worker waiting for a dead peer ignores SIGTERM


def test_two_workers_train_one_model_and_only_the_chief_writes(demo_data, tmp_path, one_process_global_batch):
    codes = wait_all(start_workers(tmp_path, demo_data, *TINY))
    texts = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], texts
    assert fingerprint(texts[0]) == fingerprint(texts[1])
    assert "not the chief" in texts[1]
    assert not (tmp_path / "out1").exists() and not any((tmp_path / "tmp").iterdir())

    chief = tmp_path / "out0"
    summary = json.loads((chief / "config.json").read_text())
    assert summary["training"] == {"strategy": "multi_worker", "workers": 2, "replicas": 2, "batch_size_per_replica": 8,
                                   "global_batch_size": 16, "lr_scaling": "linear", "learning_rate": 2e-3,
                                   "steps_per_epoch": 4}
    assert summary["result"]["weights_sha256"] == fingerprint(texts[0])
    assert summary["result"]["optimizer_iterations"] == 2 * 4
    assert len((chief / "history.csv").read_text().splitlines()) == 3 and not (chief / "backup").exists()
    for a, b in zip(weights_of(chief), weights_of(one_process_global_batch)):
        assert np.allclose(a, b, atol=1e-4)  # Adam amplifies round-off in small gradients


def test_workers_that_see_different_run_folders_stop_together(demo_data, tmp_path):
    """The chief's --out holds a finished run, worker 1's is empty: rather than one worker
    stopping and the other waiting for it, both stop with the same one-line error."""
    (tmp_path / "out0").mkdir()
    (tmp_path / "out0" / "model.keras").write_text("finished")
    assert wait_all(start_workers(tmp_path, demo_data, *TINY)) == [2, 2]
    for index in range(2):
        log = (tmp_path / f"worker{index}.log").read_text()
        (line,) = [line for line in log.splitlines() if line.startswith("error:")]
        assert f"out{index}: the workers found different run states here" in line and "Traceback" not in log
    assert (tmp_path / "out0" / "model.keras").read_text() == "finished" and not (tmp_path / "out1").exists()


def test_mirrored_on_one_device_trains_like_default(demo_data, tmp_path, one_process_global_batch):
    from train.run import train_run
    run = train_run(tiny_config(batch_size=16, learning_rate=2e-3), demo_data, tmp_path / "mirrored",
                    strategy="mirrored")
    summary = json.loads((run / "config.json").read_text())
    assert summary["training"]["replicas"] == 1 and summary["training"]["learning_rate"] == 2e-3
    reference = json.loads((one_process_global_batch / "config.json").read_text())
    assert summary["result"]["weights_sha256"] == reference["result"]["weights_sha256"]


@pytest.mark.parametrize("text, message", [
    (None, "not set"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "is not in the cluster"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "at least one worker"),
])
def test_bad_tf_config_is_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        read_tf_config(text)


def test_tf_config_names_the_chief():
    workers = {"worker": ["a:1", "b:1"]}
    assert read_tf_config(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})) == (2, True)
    assert read_tf_config(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})) == (2, False)
    with_chief = dict(workers, chief=["c:1"])
    assert read_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})) == (3, False)
    assert read_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})) == (3, True)


def test_cli_multi_worker_without_tf_config(demo_data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "train", "--data", str(demo_data), "--strategy", "multi_worker",
                           "--out", str(tmp_path / "r")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc)
    assert line.startswith("error: TF_CONFIG: not set") and not (tmp_path / "r").exists()
