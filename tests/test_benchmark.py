import json
import math

import numpy as np
import pytest

from benchmark.metrics import accuracy, wilson_interval
from benchmark.tables import PAPER, TEST_SETS, render_table
from tests.conftest import error_lines, run_cli


def test_wilson_interval_matches_hand_computation():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_accuracy_counts_with_threshold():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.6, 0.4, 0.9])
    result = accuracy(y, p, 0.5)
    assert result["n"] == 5 and result["n_real"] == 2 and result["n_fake"] == 3
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert accuracy(y, p, 0.35)["accuracy"] == pytest.approx(4 / 5)


def test_tables_have_the_paper_rows_and_numbers():
    metrics = {"n": 10, "n_real": 5, "n_fake": 5, "accuracy": 0.9, "ci95": [0.6, 0.98]}
    results = {"m_float32": {"config": "gan", "sets": {t.name: metrics for t in TEST_SETS}},
               "e_int8": {"config": "gan_sd_ela", "sets": {t.name: metrics for t in TEST_SETS}}}
    table1, table2 = render_table(1, results), render_table(2, results)
    assert "| model | GAN (n=10, 5+5) | Stable Diffusion (n=10, 5+5) |" in table1
    assert "| m_float32 | 0.900 [0.60, 0.98] | 0.900 [0.60, 0.98] |" in table1
    assert "| paper: gan | 0.941 | 0.516 |" in table1 and "| paper: gan_sd_ela | 0.793 | 1.000 |" in table1
    assert "| model | SD1.5 (n=10) | SD2.1 (n=10) | SD XL1.0 (n=10) |" in table2
    assert "| paper: gan | 0.015 | 0.015 | 0.030 |" in table2
    assert PAPER["gan"]["GAN"] == 0.941 and PAPER["gan_sd_ela"]["Stable Diffusion"] == 1.0


def test_benchmark_cli_end_to_end_reads_preprocessing_from_metadata(tiny_export, demo_data, tmp_path):
    broken = demo_data / "gan_faces" / "gan_faces_000.jpg"
    out = tmp_path / "report"
    original = broken.read_bytes()
    try:
        broken.write_bytes(original[:300])  # a truncated download among the test images
        models = [tiny_export["float32"]["path"], tiny_export["int8"]["path"]]
        proc = run_cli("benchmark", "--models", ",".join(models), "--data", str(demo_data), "--out", str(out),
                       "--latency_runs", "5", "--threads", "1")
    finally:
        broken.write_bytes(original)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Table 1" in proc.stdout and "Table 2" in proc.stdout and "Latency" in proc.stdout
    result = json.loads((out / "benchmark.json").read_text())
    assert set(result["models"]) == {"tiny_float32", "tiny_int8"}
    gan = result["models"]["tiny_int8"]["sets"]["GAN"]
    assert gan["n_real"] == gan["n_fake"] > 0 and 0.0 <= gan["accuracy"] <= 1.0
    int8_row = next(r for r in result["latency"] if r["variant"] == "int8")
    assert int8_row["ratio"] > 0 and int8_row["size_ratio"] < 0.5
    skipped = (out / "skipped.csv").read_text()
    if "gan_faces_000.jpg" in [r["path"].rsplit("/", 1)[-1] for r in result["skipped"]]:
        assert "truncated" in skipped
    report = (out / "benchmark.md").read_text()
    for section in ("Table 1", "Table 2", "Detection metrics", "Held-out generators", "Latency"):
        assert section in report
    table1 = report[report.index("Table 1"):report.index("Table 2")]
    assert table1.count("| tiny_int8 |") == 1 and "| paper: gan_sd |" in table1
    assert "| tiny_int8 | GAN |" in report  # detection metrics row
    assert result["models"]["tiny_int8"]["sets"]["GAN"]["detail"]["auc_ci95"][0] <= 1.0


def test_benchmark_bad_inputs_are_one_line_errors(tmp_path, demo_data):
    proc = run_cli("benchmark", "--models", str(tmp_path / "none.tflite"), "--data", str(demo_data))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "none.tflite" in error_lines(proc)[0]
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a model at all")
    proc = run_cli("benchmark", "--models", str(fake), "--data", str(demo_data))
    assert proc.returncode == 2 and "not a TensorFlow Lite model" in error_lines(proc)[0]


def test_roc_auc_matches_hand_computation():
    from benchmark.metrics import roc_auc
    y = np.array([0, 0, 0, 1, 1])
    # fakes 0.8 and 0.4 against reals 0.1, 0.4, 0.9: 0.8 wins 2 pairs, 0.4 wins 1 and ties 1: 3.5 of 6
    assert roc_auc(y, np.array([0.1, 0.4, 0.9, 0.8, 0.4])) == pytest.approx(3.5 / 6)
    assert roc_auc(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == 1.0
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_held_out_table_marks_trained_sources():
    from benchmark.tables import render_held_out
    m = {"accuracy": 0.25, "auc": 0.75, "n_fake": 4}
    results = {"a_int8": {"train_sources": ["gan_faces", "real_ciplab"], "held_out": {"sd15": m}},
               "b_int8": {"train_sources": ["sd15"], "held_out": {"gan_faces": m}}}
    text = render_held_out(results)
    assert "| model | gan_faces | sd15 |" in text
    assert "| a_int8 | train | 0.250 / 0.750 (n=4) |" in text and "| b_int8 | 0.250 / 0.750 (n=4) | train |" in text


@pytest.mark.parametrize("module,flag", [("benchmark", "--models"), ("benchmark.audit", "--protocol"),
                                         ("benchmark.threshold", "--target"), ("convert", "--variants")])
def test_every_command_has_help(module, flag):
    proc = run_cli(module, "--help")
    assert proc.returncode == 0 and flag in proc.stdout
