import io
import json

import numpy as np
import pytest
from PIL import Image

from ela import ElaParams, FormatControl, Preprocessing
from tests.conftest import error_lines, run_cli
from train import pipeline
from train.data import Record, file_sha256, load_records, preprocess_records, select
from train.pipeline import choose_cache, make_dataset

SIZE = 48  # small inputs: byte identity does not depend on the size
PREPS = {
    "ela_full": Preprocessing(SIZE, ElaParams(90, "auto", "full")),
    "ela_resized": Preprocessing(SIZE, ElaParams(85, 20.0, "resized")),
    "ela_controlled": Preprocessing(SIZE, ElaParams(90, "auto", "full"), FormatControl()),
}


def collect(ds) -> tuple[np.ndarray, np.ndarray]:
    batches = list(ds)
    return np.concatenate([x.numpy() for x, _ in batches]), np.concatenate([y.numpy() for _, y in batches])


def record(path, label="real") -> Record:
    return Record(path, label, "test", "train", file_sha256(path))


@pytest.fixture(scope="module")
def demo_records(demo_data):
    return select(load_records(demo_data), ["real_ciplab", "gan_faces", "sd21_faces"], ["train"], 3)


@pytest.fixture
def with_bad_files(tmp_path, demo_records):
    """Demo records with a zero-byte file, a truncated JPEG and a text file named .jpg among them."""
    (tmp_path / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buf, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buf.getvalue()[:200])
    (tmp_path / "notes.jpg").write_text("not an image\n")
    bad = [record(tmp_path / name, "fake") for name in ("empty.jpg", "truncated.jpg", "notes.jpg")]
    return demo_records[:2] + bad[:1] + demo_records[2:4] + bad[1:] + demo_records[4:]


def assert_identical_to_reference(records, prep, parallel_calls):
    x, y = collect(make_dataset(records, prep, 4, parallel_calls=parallel_calls, cache="none"))
    reference = np.stack([prep.load(r.path) for r in records])
    x_threads, y_threads, _, _ = preprocess_records(records, prep, "test")
    assert x.dtype == np.uint8 and x.shape == (len(records), SIZE, SIZE, 3)
    assert np.array_equal(x, reference) and np.array_equal(x, x_threads)
    assert y.dtype == np.int64 and y.tolist() == [r.y for r in records] == y_threads.tolist()


@pytest.mark.parametrize("parallel_calls", [1, 2])
@pytest.mark.parametrize("prep_name", list(PREPS))
def test_pipeline_is_byte_identical_to_preprocessing_on_demo_images(demo_records, prep_name, parallel_calls):
    assert {r.y for r in demo_records} == {0, 1}
    assert_identical_to_reference(demo_records, PREPS[prep_name], parallel_calls)


@pytest.mark.parametrize("parallel_calls", [1, 2])
@pytest.mark.parametrize("prep_name", list(PREPS))
def test_pipeline_is_byte_identical_to_preprocessing_on_real_images(shared_data, prep_name, parallel_calls):
    records = select(load_records(shared_data), ["real_ciplab", "gan_faces", "sd21_faces"], ["train"], 1)
    assert_identical_to_reference(records, PREPS[prep_name], parallel_calls)


def test_batches_have_the_requested_size(demo_records):
    sizes = [int(y.shape[0]) for _, y in make_dataset(demo_records, PREPS["ela_resized"], 4, cache="none")]
    assert sizes == [4, 4, 1]


def test_shuffled_order_is_a_deterministic_permutation_per_seed(demo_records):
    prep = PREPS["ela_resized"]
    reference = {img.tobytes(): i for i, img in enumerate(prep.load(r.path) for r in demo_records)}

    def orders(seed):
        ds = make_dataset(demo_records, prep, 4, shuffle_seed=seed, repeat=True)
        x, y = collect(ds.take(6))  # two epochs of 9 images: batches 4, 4, 1 per epoch
        order = [reference[img.tobytes()] for img in x]
        assert y.tolist() == [demo_records[i].y for i in order]
        return order[:9], order[9:]

    first, second = orders(7)
    assert sorted(first) == sorted(second) == list(range(9))
    assert first != second  # each epoch reshuffles
    assert orders(7) == (first, second)
    assert orders(8) != (first, second)


@pytest.mark.parametrize("cache", ["none", "memory"])
def test_unreadable_files_are_skipped_and_reported_once(with_bad_files, cache):
    prep = PREPS["ela_full"]
    good = [r for r in with_bad_files if r.source != "test"]
    skipped = []
    ds = make_dataset(with_bad_files, prep, 4, parallel_calls=2, cache=cache, skipped=skipped)
    for _ in range(2):  # the second epoch must not report the files again
        x, y = collect(ds)
        assert np.array_equal(x, np.stack([prep.load(r.path) for r in good]))
        assert y.tolist() == [r.y for r in good]
    assert [s.path.name for s in skipped] == ["empty.jpg", "truncated.jpg", "notes.jpg"]
    for s, words in zip(skipped, ["empty file", "corrupt or truncated", "not an image"]):
        assert words in s.reason and s.path.name in s.reason
    _, _, _, skipped_threads = preprocess_records(with_bad_files, prep, "test")
    assert [(s.path, s.reason) for s in skipped] == [(s.path, s.reason) for s in skipped_threads]


def test_file_cache_is_written_reused_and_keyed(tmp_path, monkeypatch, with_bad_files):
    calls = []
    load = Preprocessing.load

    def counted_load(self, path):
        calls.append(path)
        return load(self, path)

    monkeypatch.setattr(Preprocessing, "load", counted_load)
    prep = PREPS["ela_full"]
    cache_dir = tmp_path / "cache"

    def build(records, prep, skipped=None):
        return make_dataset(records, prep, 4, parallel_calls=2, cache="file", cache_dir=cache_dir, skipped=skipped)

    skipped = []
    ds = build(with_bad_files, prep, skipped)
    x1, y1 = collect(ds)
    assert len(calls) == len(with_bad_files) and len(skipped) == 3
    cache_file = choose_cache(with_bad_files, prep, "file", cache_dir)[1]
    assert cache_file.parent == cache_dir and cache_file.with_name(cache_file.name + ".index").is_file()

    x2, y2 = collect(ds)  # second epoch: read from the cache file, nothing decoded
    again = []
    x3, y3 = collect(build(with_bad_files, prep, again))  # a new pipeline on the same cache file
    assert len(calls) == len(with_bad_files)
    assert np.array_equal(x1, x2) and np.array_equal(x1, x3) and y1.tolist() == y2.tolist() == y3.tolist()
    assert [(s.path, s.reason) for s in again] == [(s.path, s.reason) for s in skipped]

    other_prep = PREPS["ela_resized"]
    fewer = with_bad_files[1:]
    names = {choose_cache(recs, p, "file", cache_dir)[1].name for recs, p in
             [(with_bad_files, prep), (with_bad_files, other_prep), (fewer, prep)]}
    assert len(names) == 3
    collect(build(with_bad_files, other_prep))
    assert len(calls) == 2 * len(with_bad_files)  # a different preprocessing never reads the old cache
    assert len(list(cache_dir.glob("*.index"))) == 2


def test_auto_cache_keeps_small_sets_in_memory_and_large_ones_in_a_file(tmp_path, monkeypatch, demo_records):
    prep = PREPS["ela_full"]
    assert choose_cache(demo_records, prep, "auto", tmp_path) == ("memory", None)
    monkeypatch.setattr(pipeline, "MEMORY_CACHE_LIMIT", len(demo_records) * SIZE * SIZE * 3 - 1)
    kind, path = choose_cache(demo_records, prep, "auto", tmp_path)
    assert kind == "file" and path.parent == tmp_path
    assert choose_cache(demo_records, prep, "auto", None) == ("none", None)
    with pytest.raises(ValueError, match="needs a cache_dir"):
        choose_cache(demo_records, prep, "file", None)
    with pytest.raises(ValueError, match="cache must be one of"):
        choose_cache(demo_records, prep, "disk", tmp_path)
    with pytest.raises(ValueError, match="parallel_calls"):
        make_dataset(demo_records, prep, 4, parallel_calls=0)


def test_benchmark_cli_reports_ratios_to_the_loop(tmp_path, demo_data):
    out = tmp_path / "bench.json"
    proc = run_cli("train.pipeline_benchmark", "--data", str(demo_data), "--config", "gan_ela", "--images", "8",
                   "--batch_size", "4", "--train_steps", "1", "--input_size", "48", "--alpha", "0.25",
                   "--repeats", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["images"] == 8 and result["preprocessing"]["ela"]["quality"] == 90
    assert len(result["input"]) == 5 and len(result["training"]) == 3
    assert result["input"][0]["ratio"] == result["training"][0]["ratio"] == 1.0
    assert all(r["images_per_s"] == max(r["repeats"]) > 0 and len(r["repeats"]) == 2 for r in result["input"])
    assert all(r["steps"] == 1 for r in result["training"])
    assert "| tf.data parallel_calls=2, epoch 2 (cached) |" in proc.stdout


def test_benchmark_cli_errors_and_help(tmp_path):
    proc = run_cli("train.pipeline_benchmark", "--data", str(tmp_path / "absent"))
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "absent" in error_lines(proc)[0]
    assert "Traceback" not in proc.stderr
    proc = run_cli("train.pipeline_benchmark", "--help")
    assert proc.returncode == 0 and "--images" in proc.stdout


def test_a_left_over_cache_lock_is_an_error_that_says_what_to_delete(tmp_path, demo_records):
    prep = PREPS["ela_full"]
    cache_file = choose_cache(demo_records, prep, "file", tmp_path)[1]
    lock = tmp_path / f"{cache_file.name}_0.lockfile"
    lock.write_text("Created at: 0")
    with pytest.raises(RuntimeError, match=f"{lock.name}: another run .* delete {cache_file.name}_"):
        make_dataset(demo_records, prep, 4, cache="file", cache_dir=tmp_path)
    lock.unlink()
    assert len(collect(make_dataset(demo_records, prep, 4, cache="file", cache_dir=tmp_path))[1]) == len(demo_records)
