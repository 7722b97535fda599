"""A run's views, decoded by threads one view ahead: byte for byte each image decoded on its own,
whatever the number of threads or the order views are asked in; unreadable files skipped with the
reasons the decoder gives."""
import io

import numpy as np
import pytest
from PIL import Image

from ela import ImageError, Preprocessing
from train.augment import Augmentation, augmented
from train.data import Record, file_sha256, load_records, select
from train.pipeline import ViewPool

SIZE = 48  # small inputs: byte identity does not depend on the size
PREP = Preprocessing(SIZE)
AUGMENT = Augmentation(views=3, grey_p=0.5)


def reference(records, loader) -> tuple[np.ndarray, list[Record], list]:
    """Each image of `records` decoded on its own, one after the other, no threads: the images,
    the records kept, and (path, reason) of each file that could not be read."""
    images, kept, skipped = [], [], []
    for record in records:
        try:
            images.append(loader.load(record.path))
            kept.append(record)
        except ImageError as err:
            skipped.append((record.path, str(err)))
    return np.stack(images), kept, skipped


@pytest.fixture(scope="module")
def records(demo_data):
    return select(load_records(demo_data), ["real_ciplab", "gan_faces", "sd21_faces"], ["train"], 12)


def test_every_view_is_each_image_decoded_alone_for_one_or_two_threads(records):
    expected = [reference(records, augmented(PREP, AUGMENT, 5, v))[0] for v in range(AUGMENT.views)]
    assert not np.array_equal(expected[0], expected[1])  # the views differ, so a mix-up would show
    for workers in (1, 2):
        pool = ViewPool(records, PREP, AUGMENT, 5, AUGMENT.views, "test", workers)
        for v in (0, 2, 1):  # out of order: view 1 was started ahead, view 2 was not
            x, kept, skipped = pool.view(v)
            assert x.dtype == np.uint8 and x.shape == (len(records), SIZE, SIZE, 3)
            assert np.array_equal(x, expected[v]) and kept == records and skipped == []


def test_asking_for_a_view_starts_the_next_one_and_none_past_the_last(records):
    pool = ViewPool(records[:4], PREP, AUGMENT, 0, 2, "test")
    pool.view(0)
    assert list(pool.pending) == [1]
    ahead = pool.pending[1].result()[0]  # decoded before it is asked for
    assert np.array_equal(pool.view(1)[0], ahead) and pool.pending == {}


def test_without_augmentation_a_view_is_the_plain_preprocessing(records):
    x, kept, _ = ViewPool(records[:5], PREP, None, 0, 1, "test").view(0)
    assert np.array_equal(x, reference(records[:5], PREP)[0]) and kept == records[:5]


def test_unreadable_files_are_skipped_with_the_decoders_reasons(records, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buf, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buf.getvalue()[:200])
    bad = [Record(tmp_path / name, "fake", "test", "train", file_sha256(tmp_path / name))
           for name in ("empty.jpg", "truncated.jpg")]
    mixed = records[:3] + bad[:1] + records[3:6] + bad[1:]
    x, kept, skipped = ViewPool(mixed, PREP, AUGMENT, 1, AUGMENT.views, "test").view(1)
    expected, expected_kept, expected_skipped = reference(mixed, augmented(PREP, AUGMENT, 1, 1))
    assert kept == expected_kept == records[:6] and np.array_equal(x, expected) and len(x) == 6
    assert [(s.path, s.reason) for s in skipped] == expected_skipped
    assert [s.path.name for s in skipped] == ["empty.jpg", "truncated.jpg"]


def test_a_view_outside_the_range_is_an_error(records):
    with pytest.raises(IndexError, match="view 3 of 3"):
        ViewPool(records[:2], PREP, AUGMENT, 0, 3, "test").view(3)


def test_a_run_input_decodes_no_view_past_those_its_caller_needs(records):
    """QAT trains on the first views only (one per epoch): none past them is decoded ahead."""
    from train.configs import get_config, with_fields
    from train.run import ViewInputs
    cfg = with_fields(get_config("demo"), input_size=SIZE, **{"augment.views": 3})
    inputs = ViewInputs(cfg, records[:4], "test", augment=True, needed=2)
    assert inputs.count == 3 and np.array_equal(inputs.view(0)[0], reference(records[:4], augmented(
        cfg.preprocessing(), cfg.data.augment, cfg.seed, 0))[0])
    assert list(inputs.pool.pending) == [1]
    inputs.view(1)
    assert inputs.pool.pending == {}
