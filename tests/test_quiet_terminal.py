import json
import os
import subprocess
import sys

from ela.stderr_filter import filtered_stderr
from tests.conftest import ROOT

# What TensorFlow prints at start-up on a machine without a GPU unless FakeLens filters it.
STARTUP_NOISE = ("cuInit", "cuFFT", "cuDNN", "cuBLAS", "computation placer", "absl::InitializeLog", "oneDNN")


def test_filter_drops_only_the_named_lines_and_keeps_their_order(capfd):
    with filtered_stderr(("known chatter",)):  # written to the file descriptor, as C++ loggers do
        os.write(2, b"E0000 known chatter from C++\nW a real warning\n")
        os.write(2, b"known chatter again\nerror: something real\nprogress 50%\r")
    assert capfd.readouterr().err == "W a real warning\nerror: something real\nprogress 50%\r"


def test_a_tensorflow_command_prints_no_startup_noise(tiny_export):
    """In the environment a user has: without the TensorFlow variables that conftest.py sets."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS")}

    def show(**extra) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "convert", "--show", tiny_export["int8"]["path"]], cwd=ROOT,
                              env=dict(env, **extra), capture_output=True, text=True, timeout=300)

    proc = show()
    assert proc.returncode == 0 and json.loads(proc.stdout)["variant"] == "int8"
    noisy = [line for line in proc.stderr.splitlines() if any(n in line for n in STARTUP_NOISE)]
    assert not noisy, noisy
    # the filter is what hides them (this TensorFlow wheel prints them): asking for everything shows them again
    loud = show(TF_CPP_MIN_LOG_LEVEL="0")
    # (the cuDNN line on every CPU; TensorFlow's oneDNN notice only where oneDNN is on by default:
    # Intel CPUs, not AMD ones)
    assert loud.returncode == 0 and "cuDNN" in loud.stderr and "cuInit" in loud.stderr
