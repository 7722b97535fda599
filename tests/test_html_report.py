import base64
import copy
import io
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.html_report import markdown_to_html, write_html
from benchmark.metrics import accuracy, detection_metrics, roc_curve

CHROMIUM = Path("/usr/bin/chromium")
PNG_URI = "data:image/png;base64,"


class Page(HTMLParser):
    """What a report page holds: tables with their header cells, images, section ids."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self.sections, self._cell = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "th":
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "section":
            self.sections.append(attrs["id"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "th":
            self.tables[-1].append(self._cell)
            self._cell = None


def png(size=(48, 48), seed=0) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, size + (3,)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decoded_png(src: str) -> Image.Image:
    assert src.startswith(PNG_URI)
    data = base64.b64decode(src[len(PNG_URI):])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def model_result(config: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 20)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, len(y)), 0, 1)
    gan = accuracy(y, p, 0.5)
    gan["detail"] = detection_metrics(y, p, 0.5)
    fpr, tpr, _ = roc_curve(y, p)
    gan["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    sd15 = accuracy(np.ones(10, np.int64), rng.uniform(0, 1, 10), 0.5)
    held_out = dict(sd15, auc=0.61)
    return {"config": config, "variant": "float32", "threshold": 0.5, "train_sources": ["gan_faces", "real_ciplab"],
            "sets": {"GAN": gan, "SD1.5": sd15}, "held_out": {"sd15": held_out}}


GALLERY_ITEM = {"path": "/data/gan_faces/<odd>&name.jpg", "source": "gan_faces", "label": "fake", "p_fake": 0.93,
                "heat_outside_centre": 0.41, "images": {"input": png(seed=1), "rgb": png(seed=2)}}


@pytest.fixture(scope="module")
def full_result() -> dict:
    """A result with every section the page can show; the data path needs escaping."""
    empty = {"description": "fake called real", "heat_towards": "real", "n_available": 0, "items": [],
             "heat_outside_centre_mean": None, "heat_outside_centre_median": None}
    gallery = {"run": "runs/x", "model": "x", "threshold": 0.5, "input_size": 48, "ela": True, "centre": 0.5,
               "categories": {"true_positive": {"description": "fake called fake", "heat_towards": "fake",
                                                "n_available": 7, "items": [GALLERY_ITEM, GALLERY_ITEM],
                                                "heat_outside_centre_mean": 0.41, "heat_outside_centre_median": 0.41},
                              "false_negative": empty}}
    robustness = [{"model": m, "variant": "float32", "run": "x", "condition": c, "set": "GAN", "n": 40,
                   "accuracy": a, "auc": a + 0.05}
                  for m in ("x_float32", "y_float32") for c, a in (("original", 0.9), ("jpeg q50", 0.7))]
    quantization = [{"run": "x", "reference": "x_float32", "model": "x_int8", "variant": "int8", "set": "GAN", "n": 40,
                     "agreement": 0.975, "mean_abs_diff": 0.0123, "max_abs_diff": 0.31, "delta_acc_points": -2.5,
                     "delta_auc_points": 0.4, "worst": [{"path": "/data/gan_faces/worst_one.jpg", "p_float32": 0.52,
                                                         "p_int8": 0.21}]}]
    latency = [{"model": "x_float32", "variant": "float32", "threads": 1, "p50_ms": 20.0, "p90_ms": 22.0,
                "p99_ms": 31.0, "cold_ms": 40.0, "peak_mib": 55.5, "size_bytes": 4096 * 1024, "ratio": 1.0,
                "size_ratio": 1.0},
               {"model": "x_int8", "variant": "int8", "threads": 1, "p50_ms": 10.0, "p90_ms": 11.0,
                "cold_ms": 15.0, "size_bytes": 1024 * 1024, "ratio": 0.5, "size_ratio": 0.25}]  # no p99, no peak
    return {"data": "/data/<script>alert(1)</script>", "skipped": [],
            "models": {"x_float32": model_result("gan", 0), "y_float32": model_result("gan_sd", 1)},
            "robustness": robustness, "quantization": quantization, "latency": latency,
            "gradcam": {"x_float32": gallery}}


# Tables: 1, 2, detection, held-out; robustness (one set); quantisation; latency; one gallery summary.
TABLES = 8
# Images: ROC (GAN); robustness (GAN); latency ratio bars; 2 gallery items x 2 overlays.
IMAGES = 7


def check_page(page: Page):
    assert len(page.tables) == TABLES
    assert page.sections == ["accuracy", "roc", "robustness", "quantization", "latency", "gradcam"]
    headers = {h for table in page.tables for h in table}
    assert {"GAN (n=40, 20+20)", "SD1.5 (n=10)", "ROC AUC", "sd15", "jpeg q50", "decision agreement",
            "p99 ms", "peak MiB", "p50 ratio", "shown / available"} <= headers
    assert len(page.images) == IMAGES
    for src in page.images:
        assert decoded_png(src).size[0] > 0


def test_page_is_self_contained_and_shows_every_section(full_result, tmp_path):
    path = write_html(full_result, tmp_path / "report.html")
    assert path == tmp_path / "report.html" and os.listdir(tmp_path) == ["report.html"]
    text = path.read_text(encoding="utf-8")
    for outside in ("<script", "<link", "http://", "https://", "@import", "url("):
        assert outside not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;odd&gt;&amp;name.jpg" in text
    check_page(Page(text))
    assert ">31.00<" in text and ">55.5<" in text  # the row that has p99 and peak memory
    assert text.count(">–<") >= 2  # the row without them
    assert ">-2.5<" in text and ">+0.4<" in text and "worst_one.jpg, p_float32=0.520, p_int8=0.210" in text
    assert "0.900 / 0.950 (n=40)" in text and "2 / 7" in text and ">paper: gan_sd<" in text and "| paper" not in text


def test_sections_without_data_are_left_out(full_result, tmp_path):
    result = copy.deepcopy(full_result)
    for model in result["models"].values():
        del model["sets"]["GAN"]["roc"]
    for key in ("robustness", "quantization", "latency", "gradcam"):
        del result[key]
    page = Page(write_html(result, tmp_path / "r.html").read_text())
    assert page.sections == ["accuracy"] and page.images == [] and len(page.tables) == 4
    bare = Page(write_html({"data": "d", "models": {}, "skipped": []}, tmp_path / "bare.html").read_text())
    assert bare.sections == [] and bare.tables == []


def test_markdown_tables_become_html_tables():
    html = markdown_to_html("Caption <1>\n\n| model | acc |\n|---|---:|\n| m&1 | 0.5 |\n\n- note one\n- note two")
    assert '<p class="caption">Caption &lt;1&gt;</p>' in html
    assert '<th>model</th><th class="num">acc</th>' in html
    assert '<td>m&amp;1</td><td class="num">0.5</td>' in html
    assert "<li>note one</li><li>note two</li>" in html


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)))


def test_page_renders_in_headless_chromium(full_result, tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("FAKELENS_REQUIRE_CHROMIUM"):
            pytest.fail(f"FAKELENS_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is absent")
    url = write_html(full_result, tmp_path / "report.html").as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    check_page(Page(dom.stdout))

    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = np.unique(np.asarray(image).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, table rules and plots, not a blank or flat page
