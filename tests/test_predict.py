"""Verdicts on one's own photos: the Python API and `python -m benchmark.predict` (rows, error
rows, formats, exit codes), with the preprocessing read from the model."""
import csv
import io
import json

import pytest

from tests.conftest import run_cli


@pytest.fixture
def photos(tmp_path, demo_data):
    """A folder with two readable photos (one nested), a corrupt one and a text file."""
    folder = tmp_path / "mine"
    (folder / "trip").mkdir(parents=True)
    (folder / "a.jpg").write_bytes((demo_data / "real_ciplab" / "real_ciplab_000.jpg").read_bytes())
    (folder / "trip" / "b.png").write_bytes((demo_data / "sd15" / "sd15_000.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image file")
    return folder


def test_the_api_gives_the_models_own_scores_with_its_preprocessing(tiny_export, photos):
    from benchmark import Detector, Prediction
    from convert.runtime import TfliteModel
    detector = Detector(tiny_export["int8"]["path"], threads=2)
    verdict = detector.predict(photos / "a.jpg")
    assert isinstance(verdict, Prediction) and verdict.error is None
    expected = TfliteModel(tiny_export["int8"]["path"]).probabilities(
        detector.info.preprocessing.load(photos / "a.jpg")[None])[0, 1]  # ELA from the metadata
    assert verdict.p_fake == pytest.approx(float(expected), abs=1e-7)
    assert verdict.threshold == detector.info.threshold
    assert verdict.label == ("fake" if verdict.p_fake >= verdict.threshold else "real")
    bad = detector.predict(photos / "broken.jpg")
    assert bad.label is None and bad.p_fake is None and "not an image Pillow can read" in bad.error


def test_many_photos_keep_their_order_and_match_one_at_a_time(tiny_export, photos, demo_data):
    from benchmark import Detector
    detector = Detector(tiny_export["float32"]["path"], threads=2)
    paths = sorted(str(p) for p in (demo_data / "gan_faces").glob("*.jpg"))[:70]  # more than decoded ahead
    many = list(detector.predict_many(paths))
    assert [p.path for p in many] == paths
    assert [p.p_fake for p in many[::10]] == [detector.predict(p).p_fake for p in paths[::10]]


def test_probes_name_the_changes_that_move_a_photo_across_the_threshold(tiny_export, photos):
    """With the threshold set between a photo's score and its grey copy's, grey must be named;
    with a threshold no score reaches, nothing can change and the verdict is steady."""
    import dataclasses
    from benchmark import Detector
    from benchmark.invariance import PROBES
    from convert.runtime import TfliteModel
    from ela import read_image
    detector = Detector(tiny_export["float32"]["path"], threads=1)
    path = photos / "a.jpg"
    img, sha256 = read_image(path)
    model, prep = TfliteModel(tiny_export["float32"]["path"]), detector.info.input_preprocessing
    p_plain = float(model.probabilities(prep.apply(img, sha256)[None])[0, 1])
    p_probed = {name: float(model.probabilities(prep.apply(change(img), sha256)[None])[0, 1])
                for name, change in PROBES.items()}
    assert abs(p_probed["grey"] - p_plain) > 1e-4  # a colour photo: grey moves its score
    threshold = (p_plain + p_probed["grey"]) / 2
    detector.info = dataclasses.replace(detector.info, threshold=threshold)
    verdict = detector.predict(path, probes=True)
    assert verdict.p_fake == pytest.approx(p_plain, abs=1e-6) and "grey" in verdict.unsteady
    assert verdict.unsteady == tuple(n for n, p in p_probed.items() if (p >= threshold) != (p_plain >= threshold))
    detector.info = dataclasses.replace(detector.info, threshold=1.01)
    assert detector.predict(path, probes=True).unsteady == ()
    assert detector.predict(path).unsteady is None and "unsteady" not in detector.predict(path).to_dict()


def test_predict_command_json_rows_with_error_rows(tiny_export, photos):
    proc = run_cli("benchmark.predict", "--model", tiny_export["int8"]["path"], str(photos),
                   str(photos / "missing.jpg"), "--format", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["a.jpg", "broken.jpg", "b.png", "missing.jpg"]
    assert all(set(r) >= {"path", "label", "p_fake", "threshold", "error"} for r in rows)
    good = [r for r in rows if r["error"] is None]
    assert len(good) == 2 and all(0.0 <= r["p_fake"] <= 1.0 and r["label"] in ("real", "fake") for r in good)
    assert "not an image Pillow can read" in rows[1]["error"] and "no such file" in rows[3]["error"]
    assert rows[1]["label"] is None and rows[1]["p_fake"] is None


def test_predict_command_table_csv_globs_and_exit_codes(tiny_export, photos):
    model = tiny_export["float32"]["path"]
    table = run_cli("benchmark.predict", "--model", model, str(photos / "*.jpg"))
    assert table.returncode == 0 and "a.jpg" in table.stdout and "error:" in table.stdout
    assert "2 photo(s): " in table.stdout and "1 could not be read" in table.stdout
    rows = list(csv.DictReader(io.StringIO(
        run_cli("benchmark.predict", "--model", model, str(photos / "trip"), "--format", "csv").stdout)))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["b.png"] and rows[0]["error"] == ""
    failed = run_cli("benchmark.predict", "--model", model, str(photos / "broken.jpg"))
    assert failed.returncode == 2 and "no photo could be read" in failed.stderr
    empty = photos / "empty"
    empty.mkdir()
    nothing = run_cli("benchmark.predict", "--model", model, str(empty))
    assert nothing.returncode == 2 and "no image files found" in nothing.stderr and "Traceback" not in nothing.stderr
    usage = run_cli("benchmark.predict", "--model", model)
    assert usage.returncode == 1 and "give one or more photos" in usage.stderr
    probed = json.loads(run_cli("benchmark.predict", "--model", model, str(photos), "--probes", "--format", "json").stdout)
    assert [r["unsteady"] is None for r in probed] == [False, True, False]  # the unreadable photo: null
    assert all(set(r["unsteady"]) <= {"png", "jpeg95_444", "jpeg75_420", "scale0.75", "scale1.5", "crop0.9", "flip",
                                      "grey"} for r in probed if r["error"] is None)
    assert all("png" not in r["unsteady"] for r in probed if r["error"] is None)  # lossless: the same pixels
    table = run_cli("benchmark.predict", "--model", model, str(photos), "--probes").stdout
    assert table.count("    steady: ") + table.count("    unsteady: ") == 2
    assert f"; {sum(bool(r['unsteady']) for r in probed)} verdict(s) unsteady under the probes" in table
    rows = list(csv.DictReader(io.StringIO(
        run_cli("benchmark.predict", "--model", model, str(photos), "--probes", "--format", "csv").stdout)))
    assert [r["unsteady"] for r in rows] == [";".join(r["unsteady"] or []) for r in probed]
    no_model = run_cli("benchmark.predict", "--model", str(photos / "a.jpg"), str(photos / "a.jpg"))
    assert no_model.returncode == 2 and "not a TensorFlow Lite model" in no_model.stderr


def test_speed_command_measures_both_paths_on_the_same_photos(tiny_export, photos, tmp_path):
    out = tmp_path / "speed" / "speed.json"
    proc = run_cli("benchmark.predict_speed", "--model", tiny_export["float32"]["path"], str(photos),
                   "--repeats", "1", "--threads", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| loop |" in proc.stdout and "| parallel |" in proc.stdout and "same p(fake)" in proc.stdout
    result = json.loads(out.read_text())
    assert result["images"] == 3 and result["unreadable"] == 1 and result["threads"] == 2 and result["same_scores"]
    loop, parallel = result["paths"]
    assert (loop["path"], parallel["path"]) == ("loop", "parallel") and loop["ratio"] == 1.0
    for row in (loop, parallel):
        assert row["images_per_s"] > 0 and len(row["repeats"]) == 1 and row["peak_mib"] > row["peak_above_baseline_mib"] > 0
    assert parallel["ratio"] == pytest.approx(parallel["images_per_s"] / loop["images_per_s"])


def test_speed_command_spreads_its_limit_over_the_photos():
    from benchmark.predict_speed import spread
    paths = [f"{folder}/{i}.jpg" for folder in "abc" for i in range(4)]
    assert spread(paths, 3) == ["a/0.jpg", "b/0.jpg", "c/0.jpg"] and spread(paths, None) == paths == spread(paths, 50)


def test_a_model_with_an_uncertain_band_marks_the_verdicts_inside_it(small_float_model, photos, tmp_path):
    """The band in the metadata (convert --threshold_target) reaches every output: the API's
    `uncertain`, JSON and CSV fields, the table's line and count; a model without one says nothing."""
    from benchmark import Detector
    from convert.metadata import ModelInfo, write_metadata
    from ela import Preprocessing
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(write_metadata(small_float_model, ModelInfo("m", Preprocessing(64))))
    p_a = Detector(plain, threads=1).predict(photos / "a.jpg").p_fake
    band = (max(0.0, p_a - 1e-4), min(1.0, p_a + 1e-4))  # around a.jpg's score, which is the threshold
    banded = tmp_path / "banded.tflite"
    banded.write_bytes(write_metadata(small_float_model, ModelInfo("m", Preprocessing(64), threshold=p_a,
                                                                   uncertain_band=band)))
    detector = Detector(banded, threads=1)
    a, b = detector.predict(photos / "a.jpg"), detector.predict(photos / "trip" / "b.png")
    assert a.uncertain is True and a.label == "fake"
    assert b.uncertain is (band[0] < b.p_fake < band[1]) is False
    assert detector.predict(photos / "broken.jpg").uncertain is None  # an error: nothing to be uncertain about
    rows = json.loads(run_cli("benchmark.predict", "--model", str(banded), str(photos), "--format", "json").stdout)
    assert [r.get("uncertain", "absent") for r in rows] == [True, None, False]
    table = run_cli("benchmark.predict", "--model", str(banded), str(photos)).stdout
    assert table.count("    uncertain: ") == 1 and "; 1 verdict(s) uncertain" in table
    csv_rows = list(csv.DictReader(io.StringIO(
        run_cli("benchmark.predict", "--model", str(banded), str(photos), "--format", "csv").stdout)))
    assert [r["uncertain"] for r in csv_rows] == ["true", "", "false"]
    unbanded = json.loads(run_cli("benchmark.predict", "--model", str(plain), str(photos), "--format", "json").stdout)
    assert all("uncertain" not in r for r in unbanded)
    table = run_cli("benchmark.predict", "--model", str(plain), str(photos)).stdout
    assert "    uncertain: " not in table and "verdict(s) uncertain" not in table
