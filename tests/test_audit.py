import csv
import io

import numpy as np
import pytest
from PIL import Image

from benchmark.audit import audit, render
from train.demo_data import synthetic_image
from train.format_audit import file_properties


@pytest.mark.parametrize("quality", [30, 61, 75, 90, 94, 95, 99])
def test_jpeg_quality_estimate_is_exact_for_pillow_files(quality):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 99, 199)).save(buf, "JPEG", quality=quality, subsampling=0)
    props = file_properties(buf.getvalue())
    assert props["quality"] == quality and props["subsampling"] == "4:4:4" and props["format"] == "JPEG"


def test_the_one_quality_table_definition_is_the_one_pillow_writes():
    """ela.libjpeg's tables serve both the in-graph ELA and the audit's estimate: both need Pillow's own."""
    from ela.libjpeg import STD_CHROMINANCE, STD_LUMINANCE, quant_table
    for quality in range(1, 101):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=quality)
        with Image.open(buf) as img:
            luma, chroma = (np.array(img.quantization[i]).reshape(8, 8) for i in (0, 1))
        assert np.array_equal(luma, quant_table(STD_LUMINANCE, quality)), quality
        assert np.array_equal(chroma, quant_table(STD_CHROMINANCE, quality)), quality


@pytest.fixture(scope="module")
def quality_only_dataset(tmp_path_factory):
    """Real and fake are the same kind of picture; only the JPEG quality differs (95 vs 80)."""
    root = tmp_path_factory.mktemp("quality_bias")
    rows = []
    for label, source, quality in (("real", "real_ciplab", 95), ("fake", "gan_faces", 80)):
        (root / source).mkdir()
        for i in range(60):
            seed = i if label == "real" else 1000 + i
            img = Image.fromarray(synthetic_image(np.random.RandomState(seed), 64, "noise"))
            name = f"{source}/{i:03d}.jpg"
            img.save(root / name, "JPEG", quality=quality)
            rows.append([name, label, source, "train" if i < 40 else "test"])
    with open(root / "MANIFEST.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "source", "split"], *rows])
    return root


def test_audit_flags_a_quality_shortcut(quality_only_dataset):
    result = audit(str(quality_only_dataset))
    gan = result["shortcuts"]["GAN"]
    assert gan["quality"]["accuracy"] == 1.0 and gan["format"]["accuracy"] == 0.5
    assert gan["quality"]["n"] == 40
    text = render(result)
    assert "WARNING: GAN" in text and "--protocol controlled" in text


def test_controlled_protocol_removes_the_shortcut(quality_only_dataset):
    result = audit(str(quality_only_dataset), protocol="controlled", input_size=48)
    gan = result["shortcuts"]["GAN"]
    assert all(gan[k]["accuracy"] < 0.75 for k in gan)
    assert {s["size"] and tuple(s["size"]) for s in result["sources"]} == {("48x48",)}
    assert "WARNING: GAN" not in render(result)


@pytest.fixture(scope="module")
def content_only_dataset(tmp_path_factory):
    """Same files (JPEG q90, same size); only the content differs: the fakes' faces are lit brighter
    on a blue background, as one collection's photos might be."""
    root = tmp_path_factory.mktemp("content_bias")
    rows = []
    for label, source in (("real", "real_ciplab"), ("fake", "gan_faces")):
        (root / source).mkdir()
        for i in range(40):
            rng = np.random.RandomState(i if label == "real" else 1000 + i)
            img = synthetic_image(rng, 64, "noise").astype(int) // 4
            img[..., 2] += 150 if label == "fake" else 40
            name = f"{source}/{i:03d}.jpg"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name, "JPEG", quality=90)
            rows.append([name, label, source, "train" if i < 28 else "test"])
    with open(root / "MANIFEST.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "source", "split"], *rows])
    return root


def test_content_audit_finds_a_content_cue_and_not_a_format_one(content_only_dataset, quality_only_dataset,
                                                                imagenet_cache):
    content = audit(str(content_only_dataset), input_size=64, content=True)
    assert content["content"]["GAN"]["auc"] > 0.95 and content["content"]["GAN"]["n_test"] == 24
    assert content["shortcuts"]["GAN"]["quality"]["accuracy"] == 0.5  # the files themselves do not differ
    assert "Content only (32-px thumbnails" in render(content) and "WARNING: GAN: content alone" in render(content)
    assert audit(str(quality_only_dataset), input_size=64, content=True)["content"]["GAN"]["auc"] < 0.8
    assert "content" not in audit(str(content_only_dataset), input_size=64)
