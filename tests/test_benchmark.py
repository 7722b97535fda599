import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.metrics import accuracy, wilson_interval
from benchmark.tables import PAPER, TEST_SETS, render_table
from convert.metadata import read_model_card
from convert.model_card import INVARIANCE_HEADING
from tests.conftest import error_lines, run_cli
from train.data import load_records


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


@pytest.fixture(scope="module")
def bench(tiny_export, demo_data, tmp_path_factory) -> dict:
    """One `python -m benchmark` of the tiny run's float32 and int8 exports with every section on and
    gates that must pass, on a copy of the demo data (the session's stays intact) in which one test
    image is cut short, like a broken download. The tests below each read one part of its report."""
    data = tmp_path_factory.mktemp("bench_data") / "demo_data"
    shutil.copytree(demo_data, data)
    broken = next(r.path for r in load_records(data) if r.source == "gan_faces" and r.split == "test")
    broken.write_bytes(broken.read_bytes()[:300])
    out = tmp_path_factory.mktemp("bench") / "report"
    models = [tiny_export["float32"]["path"], tiny_export["int8"]["path"]]
    export_before = {p.name: p.stat().st_mtime_ns for p in Path(models[0]).parent.iterdir()}
    proc = run_cli("benchmark", "--models", ",".join(models), "--data", str(data), "--report", str(out),
                   "--latency_runs", "5", "--threads", "1", "--robustness", "original,jpeg50", "--gradcam", "1",
                   "--invariance", "png,grey", "--max_quant_drop", "100", "--fail_below", "accuracy=0,auc=0",
                   "--max_flip", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"proc": proc, "out": out, "models": models, "export_before": export_before, "broken": broken,
            "result": json.loads((out / "benchmark.json").read_text()), "report": (out / "benchmark.md").read_text()}


def test_benchmark_passes_its_gates_and_prints_the_tables(bench):
    assert "gate failed" not in bench["proc"].stderr and not error_lines(bench["proc"])
    assert "Table 1" in bench["proc"].stdout and "Table 2" in bench["proc"].stdout and "Latency" in bench["proc"].stdout
    assert set(bench["result"]["models"]) == {"tiny_float32", "tiny_int8"}


def test_balanced_sets_have_accuracy_and_a_roc_curve(bench):
    sets = bench["result"]["models"]["tiny_int8"]["sets"]
    gan = sets["GAN"]
    assert gan["n_real"] == gan["n_fake"] > 0 and 0.0 <= gan["accuracy"] <= 1.0 and gan["detail"]["auc_ci95"][0] <= 1.0
    roc = gan["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 200 and roc["fpr"][0] == roc["tpr"][0] == 0.0
    assert roc["fpr"][-1] == roc["tpr"][-1] == 1.0 and roc["fpr"] == sorted(roc["fpr"])
    assert "roc" not in sets["SD XL1.0"]  # fake-only: no curve


def test_latency_compares_int8_with_float32_and_times_the_shared_preprocessing_once(bench):
    result = bench["result"]
    int8_row = next(r for r in result["latency"] if r["variant"] == "int8")
    assert int8_row["ratio"] > 0 and int8_row["size_ratio"] < 0.5 and int8_row["memory_ratio"] > 0
    assert all(r["p99_ms"] >= r["p90_ms"] >= r["p50_ms"] > 0 and r["cold_ms"] > 0 and r["peak_mib"] > 0
               for r in result["latency"])
    (prep_row,) = result["preprocessing_latency"]  # both exports share one ELA preprocessing
    assert prep_row["models"] == ["tiny_float32", "tiny_int8"] and prep_row["n"] == 5
    assert prep_row["preprocessing"]["ela"] and prep_row["ms_per_image"] > 0 and prep_row["ratio"] > 0


def test_robustness_covers_each_condition_and_set_on_the_same_images(bench):
    result = bench["result"]
    rows = result["robustness"]
    assert {r["condition"] for r in rows} == {"original", "jpeg50"}
    assert all(r["n"] == result["models"][r["model"]]["sets"][r["set"]]["n"] for r in rows)
    assert "| model | set | original | jpeg50 |" in bench["report"]


def test_the_unperturbed_robustness_condition_is_the_plain_benchmark(bench):
    models = bench["result"]["models"]
    original = [r for r in bench["result"]["robustness"] if r["condition"] == "original"]
    assert {(r["model"], r["set"]) for r in original} >= {("tiny_int8", "GAN"), ("tiny_float32", "GAN")}
    assert all(r["accuracy"] == models[r["model"]]["sets"][r["set"]]["accuracy"]
               and r["auc"] == models[r["model"]]["sets"][r["set"]]["detail"]["auc"] for r in original)


def test_invariance_probes_per_set_and_per_source(bench):
    result = bench["result"]
    rows = [r for r in result["invariance"] if r["kind"] != "steadiness"]
    assert {r["probe"] for r in rows} == {"png", "grey"} and all(0.0 <= r["flip_rate"] <= 1.0 for r in rows)
    steadiness = {r["model"]: r for r in result["invariance"] if r["kind"] == "steadiness"}
    assert set(steadiness) == set(result["models"])  # one per model, over every probed test image
    for r in steadiness.values():
        assert r["probe"] == "any" and 0 <= r["n_unsteady"] <= r["n"]
        assert r["wrong_unsteady"] <= r["n_unsteady"] and r["wrong_steady"] <= r["n"] - r["n_unsteady"]
    assert "Steadiness as a warning" in bench["report"]
    per_set = [r for r in rows if r["kind"] == "set"]
    assert per_set and all(r["n"] == result["models"][r["model"]]["sets"][r["group"]]["n"] for r in per_set)
    assert ("tiny_int8", "source", "real_lfw", "grey") in {(r["model"], r["kind"], r["group"], r["probe"]) for r in rows}


def test_a_lossless_resave_moves_no_decision(bench):
    png = [r for r in bench["result"]["invariance"] if r["probe"] == "png"]
    assert png and all(r["flip_rate"] == 0.0 for r in png)  # the same pixels


def test_quantisation_damage_pairs_int8_with_the_float32_of_its_run(bench):
    quantization = bench["result"]["quantization"]
    assert {q["model"] for q in quantization} == {"tiny_int8"}
    assert {q["reference"] for q in quantization} == {"tiny_float32"}


def test_a_truncated_test_image_is_skipped_and_listed(bench):
    assert bench["broken"].name in [r["path"].rsplit("/", 1)[-1] for r in bench["result"]["skipped"]]
    assert bench["broken"].name in (bench["out"] / "skipped.csv").read_text()
    assert "truncated" in (bench["out"] / "skipped.csv").read_text()


def test_the_markdown_report_has_every_section(bench):
    report = bench["report"]
    for section in ("Table 1", "Table 2", "Detection metrics", "Held-out generators", "Robustness", "Invariance",
                    "Quantisation damage", "Latency", "Preprocessing time", "Grad-CAM: share of heat outside"):
        assert section in report, section
    table1 = report[report.index("Table 1"):report.index("Table 2")]
    assert table1.count("| tiny_int8 |") == 1 and "| paper:" not in table1  # the demo config is no paper model
    assert "| tiny_int8 | GAN |" in report  # detection metrics row


def test_gradcam_shows_one_gallery_per_run_sampled_by_float32(bench):
    gradcam = bench["result"]["gradcam"]
    assert list(gradcam) == ["tiny_float32"]  # its exports share the run's Keras model
    categories = gradcam["tiny_float32"]["categories"]
    shown = [item for c in categories.values() for item in c["items"]]
    assert shown and all(len(c["items"]) <= 1 for c in categories.values())
    assert all(set(item["images"]) == {"input", "rgb"} for item in shown)  # ELA model: map and photo


def test_the_html_report_has_every_table_and_the_gradcam_images(bench):
    page = (bench["out"] / "report.html").read_text()
    shown = [item for c in bench["result"]["gradcam"]["tiny_float32"]["categories"].values() for item in c["items"]]
    assert 'id="invariance"' in page and ">Invariance</h2>" in page
    assert page.count("<table") >= 8 and page.count('src="data:image/png;base64,') >= len(shown) * 2 + 1


def test_each_model_card_gets_the_invariance_section_and_the_export_is_left_as_it_was(bench):
    export_card = read_model_card(bench["models"][1])
    card = (bench["out"] / "cards" / "tiny_int8.md").read_text()
    heading = export_card.index(INVARIANCE_HEADING)
    assert card[:heading] == export_card[:heading] and "Not measured at export" not in card
    section = card[heading:card.index("## How to reproduce")]
    assert "Measured by `python -m benchmark`" in section and "| tiny_int8 | GAN (n=" in section
    assert "tiny_float32" not in section and "| model | set | png | grey |" in section
    assert (bench["out"] / "cards" / "tiny_float32.md").is_file()
    export = Path(bench["models"][0]).parent
    assert {p.name: p.stat().st_mtime_ns for p in export.iterdir()} == bench["export_before"]


def test_failed_gates_exit_3_after_writing_the_report(tiny_export, demo_data, tmp_path):
    out = tmp_path / "gated"
    proc = run_cli("benchmark", "--models", tiny_export["float32"]["path"] + "," + tiny_export["int8"]["path"],
                   "--data", str(demo_data), "--out", str(out), "--latency_runs", "2", "--threads", "1",
                   "--robustness", "none", "--invariance", "none", "--fail_below", "accuracy=1.01",
                   "--max_quant_drop", "-1")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert all((out / f).is_file() for f in ("benchmark.md", "benchmark.json", "skipped.csv"))
    result = json.loads((out / "benchmark.json").read_text())
    assert result["robustness"] == [] and result["invariance"] == []
    gate_lines = [line for line in proc.stderr.splitlines() if line.startswith("gate failed:")]
    n_balanced = sum(1 for m in result["models"].values() for t in TEST_SETS if t.real_sources and t.name in m["sets"])
    n_quant = sum(1 for q in result["quantization"] for k in ("delta_acc_points", "delta_auc_points")
                  if q[k] is not None and q[k] < 1)  # a -1 allowance fails unless it gained over 1 point
    assert len([g for g in gate_lines if "accuracy" in g and "below 1.01" in g]) == n_balanced > 0
    assert len([g for g in gate_lines if "points vs tiny_float32" in g]) == n_quant
    assert not error_lines(proc)


@pytest.mark.parametrize("flag,value,message", [("--fail_below", "accuracy", "metric=value"),
                                                ("--fail_below", "precision=0.5", "metric=value"),
                                                ("--fail_below", "auc=high", "not a number"),
                                                ("--robustness", "jpeg10", "unknown robustness condition"),
                                                ("--invariance", "sepia", "unknown invariance probe"),
                                                ("--max_flip", "1.5", "max_flip")])
def test_bad_gate_and_robustness_flags_are_usage_errors(tmp_path, flag, value, message):
    proc = run_cli("benchmark", "--models", str(tmp_path), flag, value)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_gate_failures_on_floors_and_quantisation_drops():
    from benchmark.gates import gate_failures, parse_floors
    assert parse_floors(["auc=0.9", "balanced_accuracy=0.8"]) == {"auc": 0.9, "balanced_accuracy": 0.8}
    detail = {"accuracy": 0.85, "balanced_accuracy": 0.84, "auc": 0.95}
    result = {"models": {"m_int8": {"sets": {"GAN": {"detail": detail}, "SD1.5": {"accuracy": 0.1}}}},
              "quantization": [{"model": "m_int8", "reference": "m_float32", "set": "GAN",
                                "delta_acc_points": -2.5, "delta_auc_points": -0.5},
                               {"model": "m_int8", "reference": "m_float32", "set": "SD1.5",
                                "delta_acc_points": -4.0, "delta_auc_points": None}]}
    assert gate_failures(result, {"auc": 0.9, "accuracy": 0.8}, 5.0) == []
    failures = gate_failures(result, {"auc": 0.96}, 2.0)
    assert failures == ["m_int8 on GAN: auc 0.9500 is below 0.96",
                        "m_int8 on GAN: accuracy -2.50 points vs m_float32 (allowed drop: 2.0 points)",
                        "m_int8 on SD1.5: accuracy -4.00 points vs m_float32 (allowed drop: 2.0 points)"]


def test_roc_points_are_thinned_to_at_most_200_with_the_ends_kept():
    from benchmark.metrics import roc_curve
    from benchmark.run import roc_points
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 1000), rng.random(1000)
    roc = roc_points(y, p)
    assert len(roc["fpr"]) == len(roc["tpr"]) == 200
    fpr, tpr, _ = roc_curve(y, p)
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (fpr[-1], tpr[-1])
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    small = roc_points(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.4]))
    assert small == {"fpr": [0.0, 0.0, 0.0, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0]}  # short curves stay whole


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




def test_uncertain_verdicts_are_counted_per_source_with_the_errors_among_them(bench):
    """Only models that carry a band get rows (the tiny exports have none: no section); for one
    that does, every test image is counted once per source and once in "all", inside the band
    (low < p < high) or not, and wrong or not at the model's threshold."""
    import dataclasses

    from benchmark.html_report import render_html
    from benchmark.uncertainty import render_uncertain, uncertain_rows
    from ela import Preprocessing
    from convert.metadata import ModelInfo
    from train.data import Record
    assert bench["result"]["uncertain"] == [] and "Uncertain verdicts" not in bench["report"]
    records = [Record(Path(f"{s}_{i}.jpg"), label, s, "test", "0" * 64)
               for s, label in (("real_a", "real"), ("fake_b", "fake")) for i in range(4)]
    # real_a: 0.1 certain right, 0.55 uncertain wrong, 0.45 uncertain right, 0.95 certain wrong;
    # fake_b: 0.9, 0.2 (certain wrong), 0.52 (uncertain right), 0.3 (certain wrong)
    p = dict(zip((r.path for r in records), (0.1, 0.55, 0.45, 0.95, 0.9, 0.2, 0.52, 0.3)))
    info = ModelInfo("m_float32", Preprocessing(64), threshold=0.5, uncertain_band=(0.4, 0.6))
    rows = uncertain_rows({"m_float32": info, "plain": dataclasses.replace(info, uncertain_band=None)},
                          {"m_float32": p, "plain": p}, records)
    got = {r["group"]: (r["n"], r["n_uncertain"], r["wrong_uncertain"], r["wrong_certain"]) for r in rows}
    assert got == {"fake_b": (4, 1, 0, 2), "real_a": (4, 2, 1, 1), "all": (8, 3, 1, 3)}
    assert {r["model"] for r in rows} == {"m_float32"}
    text = render_uncertain(rows)
    assert "| m_float32 | 0.400–0.600 | all | 8 | 3 (37.5%) | 1 (33.3%) | 3 (60.0%) | 1 of 4 (25.0%) |" in text
    page = render_html({"models": {}, "uncertain": rows})
    assert 'id="uncertain"' in page and ">Uncertain verdicts</h2>" in page
