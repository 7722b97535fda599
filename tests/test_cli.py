"""Every command shares one skeleton (train/cli.py): --help exits 0 and lists the command's flags;
a usage mistake — unknown flag, missing required flag, bad value, stray argument — exits 1 with one
`error:` line before any work (nothing is written). Each command runs as a user runs it."""
from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, error_lines, run_cli
from train.cli import EXIT_DONE, EXIT_USAGE

# command → flags its --help must list (--debug comes from the skeleton for every one)
COMMANDS = {
    "train": ["--config", "--protocol", "--exclude_sources", "--set"],
    "train.demo_data": ["--seed"],
    "convert": ["--run", "--variants", "--threshold", "--show", "--tail", "--tail_offset"],
    "benchmark": ["--models", "--robustness", "--invariance", "--max_quant_drop", "--fail_below", "--max_flip",
                  "--split"],
    "benchmark.predict": ["--model", "--format", "--faces"],
    "benchmark.predict_speed": ["--model", "--limit"],
    "benchmark.threshold": ["--model", "--target"],
    "benchmark.audit": ["--protocol", "--input_size"],
    "benchmark.faces": ["--per_source"],
    "benchmark.layer_error": ["--float", "--quantised", "--images"],
}

# (command and arguments, words of the one error line)
USAGE_MISTAKES = [
    (("train", "--nosuch"), "Unknown command line flag 'nosuch'"),
    (("train", "stray"), "unexpected arguments: stray"),
    (("train", "--batch_size", "0"), "batch_size"),
    (("train", "--max_per_source", "0"), "max_per_source"),
    (("train", "--protocol", "raw"), "flag --protocol=raw"),
    (("train", "--alpha", "0"), "alpha (the MobileNet width) must be positive"),
    (("train", "--learning_rate", "-1"), "learning_rate must be positive"),
    (("train", "--input_size", "8"), "input_size must be an integer >= 32"),
    (("train", "--set", "colour=1"), "has no field 'colour'"),
    (("train", "--config", "gan", "--views", "2"), "--views: config 'gan' uses no augmentation"),
    (("train.demo_data", "a", "b"), "one output folder at most"),
    (("train.demo_data", "--seed", "-1"), "flag --seed=-1"),
    (("convert",), "--run is required"),
    (("convert", "--run", "r", "stray"), "unexpected arguments: stray"),
    (("convert", "--run", "r", "--threshold", "7"), "flag --threshold=7"),
    (("convert", "--run", "r", "--qat_epochs", "0"), "flag --qat_epochs=0"),
    (("convert", "--run", "r", "--variants", "float32,int4"), "unknown variant 'int4'"),
    (("convert", "--run", "r", "--ela_in_graph", "--variants", "float16"), "float32 and int8 only, not float16"),
    (("convert", "--run", "r", "--threshold_target", "fpr"), "unknown threshold target 'fpr'"),
    (("convert", "--run", "r", "--threshold_target", "fpr=0.1", "--threshold", "0.7"), "not both"),
    (("convert", "--run", "r", "--threshold_target", "fpr=0.1", "--bake_threshold"), "--bake_threshold needs"),
    (("convert", "--run", "r", "--tail_offset", "sd21_faces"), "write SOURCE=LOGIT once per tail"),
    (("convert", "--run", "r", "--tail_offset", "auto"), "give --threshold_target too"),
    (("benchmark",), "--models is required"),
    (("benchmark", "--models", "m", "stray"), "unexpected arguments: stray"),
    (("benchmark", "--models", "m", "--latency_runs", "0"), "flag --latency_runs=0"),
    (("benchmark", "--models", "m", "--threads", "1,x"), "--threads must be whole numbers"),
    (("benchmark", "--models", "m", "--split", "train"), "flag --split=train"),
    (("benchmark.predict", "a.jpg"), "--model is required"),
    (("benchmark.predict", "--model", "m.tflite"), "give one or more photos"),
    (("benchmark.predict", "--model", "m.tflite", "--format", "xml", "a.jpg"), "flag --format=xml"),
    (("benchmark.predict_speed", "--model", "m.tflite"), "give the photos to judge"),
    (("benchmark.predict_speed", "--model", "m.tflite", "--repeats", "0", "a.jpg"), "flag --repeats=0"),
    (("benchmark.threshold", "--model", "m.tflite", "--target", "fpr=2"), "the false-positive rate must be"),
    (("benchmark.threshold", "--model", "m.tflite", "--target", "best"), "unknown threshold target 'best'"),
    (("benchmark.layer_error", "--float", "m.tflite"), "--float and --quantised are required"),
    (("benchmark.audit", "--input_size", "0"), "flag --input_size=0"),
    (("benchmark.audit", "stray"), "unexpected arguments: stray"),
    (("benchmark.faces", "--per_source", "0"), "flag --per_source=0"),
]


def test_the_table_names_every_command():
    """Every module that runs the skeleton (main_entry) is in COMMANDS and in USAGE_MISTAKES."""
    found = set()
    for path in ROOT.glob("*/*.py"):
        runs_skeleton = re.search(r"^\s+main_entry\(main", path.read_text(), re.M)
        if path.parts[-2] in ("ela", "train", "convert", "benchmark") and runs_skeleton:
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.add(module.removesuffix(".__main__"))
    assert found == set(COMMANDS)
    assert {args[0] for args, _ in USAGE_MISTAKES} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_0_and_lists_the_flags(command, tmp_path):
    proc = run_cli(command, "--help", cwd=tmp_path)
    assert proc.returncode == EXIT_DONE, proc.stderr[-2000:]
    for flag in COMMANDS[command] + ["debug"]:
        assert re.search(rf"--(\[no\])?{flag.lstrip('-')}:", proc.stdout), flag
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,words", USAGE_MISTAKES, ids=[" ".join(a) for a, _ in USAGE_MISTAKES])
def test_a_usage_mistake_exits_1_with_one_line_before_any_work(args, words, tmp_path):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = error_lines(proc)
    assert words in line and line.endswith("(see --help)"), line
    assert list(tmp_path.iterdir()) == []
