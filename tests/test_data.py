import numpy as np
from PIL import Image

from ela import Preprocessing
from train.data import balance, hash_split, load_records, preprocess_records, scan_folders, select


def write_png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.RandomState(seed).randint(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)


def test_hash_split_is_deterministic_and_roughly_proportional():
    hexes = [f"{i * 2654435761 % 2**32:08x}" + "0" * 56 for i in range(4000)]
    splits = [hash_split(h) for h in hexes]
    assert splits == [hash_split(h) for h in hexes]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(share["test"] - 0.15) < 0.03 and abs(share["val"] - 0.15) < 0.03


def test_folder_tree_splits_are_disjoint_and_duplicates_share_a_split(tmp_path):
    for i in range(30):
        write_png(tmp_path / "cam" / f"r{i}.png", i)
        write_png(tmp_path / "gen" / f"f{i}.png", 100 + i)
    (tmp_path / "gen" / "copy_of_r0.png").write_bytes((tmp_path / "cam" / "r0.png").read_bytes())
    records = scan_folders(tmp_path, {"cam": "real", "gen": "fake"})
    assert len(records) == 61
    by_split = {s: {r.path for r in records if r.split == s} for s in ("train", "val", "test")}
    assert sum(len(v) for v in by_split.values()) == 61
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    split_of = {r.path.name: r.split for r in records}
    assert split_of["r0.png"] == split_of["copy_of_r0.png"]
    assert [r.split for r in scan_folders(tmp_path, {"cam": "real", "gen": "fake"})] == [r.split for r in records]


def test_shared_manifest_loads_with_its_fixed_splits(shared_data):
    records = load_records(shared_data)
    assert len(records) == 4509  # data version 2
    counts = {s: sum(1 for r in records if r.source == "real_ciplab" and r.split == s) for s in ("train", "val", "test")}
    assert counts == {"train": 366, "val": 76, "test": 94}
    assert {r.source for r in records} == {"real_ciplab", "real_lfw", "real_ffhq", "real_webmorph", "gan_faces",
                                           "sd21_faces", "sd15", "sdxl_faces"}
    assert len({r.path for r in records}) == len(records)
    gan_test = select(records, ["real_ciplab", "gan_faces"], ["test"])
    balanced = balance(gan_test)
    assert sum(r.label == "real" for r in balanced) == sum(r.label == "fake" for r in balanced) == 89


def test_preprocess_skips_unreadable_files_and_reports_them(tmp_path):
    write_png(tmp_path / "ok" / "a.png", 1)
    (tmp_path / "ok" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    records = scan_folders(tmp_path, {"ok": "real"})
    x, y, kept, skipped = preprocess_records(records, Preprocessing(32), "test")
    assert x.shape == (1, 32, 32, 3) and list(y) == [0]
    assert [s.path.name for s in skipped] == ["broken.png"] and "broken.png" in skipped[0].reason


def test_a_plain_folder_of_real_and_fake_photos_is_a_dataset(tmp_path):
    """real/ and fake/ at any depth; the first folder below them names the source."""
    write_png(tmp_path / "real" / "a.png", 1)
    write_png(tmp_path / "real" / "holiday" / "2024" / "b.png", 2)
    write_png(tmp_path / "fake" / "midjourney" / "c.png", 3)
    write_png(tmp_path / "fake" / "d.png", 4)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    records = {r.path.name: r for r in load_records(tmp_path)}
    assert {n: (r.label, r.source) for n, r in records.items()} == {
        "a.png": ("real", "real"), "b.png": ("real", "holiday"), "c.png": ("fake", "midjourney"),
        "d.png": ("fake", "fake")}
    assert all(r.split == hash_split(r.sha256) for r in records.values())


def test_bad_folder_layouts_are_errors_that_name_the_file(tmp_path):
    import pytest
    from train.data import DataError
    write_png(tmp_path / "fake" / "f.png", 1)
    (tmp_path / "real").mkdir()
    with pytest.raises(DataError, match="real: no image files"):
        load_records(tmp_path)
    write_png(tmp_path / "real" / "r.png", 2)
    write_png(tmp_path / "unsorted" / "x.png", 3)
    with pytest.raises(DataError, match="x.png: an image outside real/ and fake/"):
        load_records(tmp_path)
    (tmp_path / "unsorted" / "x.png").unlink()
    outside = tmp_path.parent / f"{tmp_path.name}_outside.png"
    write_png(outside, 4)
    (tmp_path / "fake" / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match="link.png: links to .*outside the dataset"):
        load_records(tmp_path)
