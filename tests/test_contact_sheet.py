"""The contact sheet (`python -m benchmark.predict --html FILE`): one self-contained page with
previews, face boxes, verdicts and error rows, sortable by p(fake) in a browser."""
import base64
import io
import os
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from benchmark.contact_sheet import THUMB_PX, render_sheet, thumbnail, write_sheet
from benchmark.detector import Face, Prediction
from tests.test_html_report import CHROMIUM, chromium

JPEG_URI = "data:image/jpeg;base64,"


class Sheet(HTMLParser):
    """What the page holds: the rows' paths and p(fake) values in order, previews, face boxes."""

    def __init__(self, text: str):
        super().__init__()
        self.rows, self.images, self.faces = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-p" in attrs:
            self.rows.append((attrs["data-path"], attrs["data-p"]))
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "span" and "face" in attrs.get("class", "").split():
            self.faces.append(attrs)


@pytest.fixture
def verdicts(tmp_path, shared_data):
    """Three photos scored out of order (0.2, 0.9, 0.5), one with two faces, and an unreadable one."""
    paths = {}
    for name, source in (("a.jpg", "gan_faces/boredhumans_10.jpg"), ("b.jpg", "real_ffhq/00027.jpg"),
                         ("<c>&.png", "sd15/" + sorted(p.name for p in (shared_data / "sd15").glob("*.png"))[0])):
        paths[name] = tmp_path / name
        paths[name].write_bytes((shared_data / source).read_bytes())
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    faces = (Face((20, 30, 100, 120), 0.99, 0.9, "fake"), Face((300, 40, 90, 110), 0.97, 0.1, "real"))
    return [Prediction(str(paths["a.jpg"]), "real", 0.2, 0.5, faces=(), scored="whole image"),
            Prediction(str(paths["b.jpg"]), "fake", 0.9, 0.5, faces=faces, scored="faces"),
            Prediction(str(tmp_path / "bad.jpg"), None, None, 0.5, "bad.jpg: not an image Pillow can read", faces=()),
            Prediction(str(paths["<c>&.png"]), "real", 0.5 - 1e-9, 0.5, faces=(), scored="whole image")]


def test_sheet_is_self_contained_with_previews_boxes_and_errors(verdicts, tmp_path):
    out = write_sheet(verdicts, tmp_path / "sheet" / "v.html", "m.tflite")
    assert os.listdir(out.parent) == ["v.html"]
    text = out.read_text(encoding="utf-8")
    for outside in ("<link", "http://", "https://", "@import", "url(", "src=\"file:"):
        assert outside not in text
    sheet = Sheet(text)
    assert [p.rsplit("/", 1)[-1] for p, _ in sheet.rows] == ["a.jpg", "b.jpg", "bad.jpg", "<c>&.png"]
    assert [p for _, p in sheet.rows][2] == ""  # the unreadable photo has no p(fake)
    assert "&lt;c&gt;&amp;.png" in text and "bad.jpg: not an image Pillow can read" in text
    assert len(sheet.images) == 3 and "no preview" in text
    for src in sheet.images:
        assert src.startswith(JPEG_URI)
        preview = Image.open(io.BytesIO(base64.b64decode(src[len(JPEG_URI):])))
        assert preview.format == "JPEG" and max(preview.size) <= THUMB_PX
    assert [f["class"] for f in sheet.faces] == ["face fake", "face real"]
    width, height = Image.open(verdicts[1].path).size  # boxes are placed in percent of the full photo
    assert f"left:{100 * 20 / width:.2f}%;top:{100 * 30 / height:.2f}%" in sheet.faces[0]["style"]
    assert ">0.500<" in text and "Fake when p(fake) ≥ 0.500" in text  # threshold shown; 0.5 - 1e-9 shows as 0.500
    assert text.count(">real<") == 2 and text.count(">fake<") == 1


def test_sheet_shows_which_probes_change_a_verdict(verdicts):
    import dataclasses
    probed = [dataclasses.replace(verdicts[0], unsteady=("grey", "crop0.9")), dataclasses.replace(verdicts[1], unsteady=()),
              verdicts[2]]  # the unreadable photo: no probes
    text = render_sheet(probed, [None] * 3, "m.tflite")
    assert "<th>probes</th>" in text and 'class="error" colspan="5"' in text
    assert '<td class="unsteady">unsteady: changes under grey, crop0.9</td>' in text
    assert '<td class="steady">steady</td>' in text
    assert "1 verdict(s) change under a probe" in text
    assert "<th>probes</th>" not in render_sheet(verdicts, [None] * 4, "m.tflite")


def test_sheet_marks_uncertain_verdicts(verdicts):
    import dataclasses
    banded = [dataclasses.replace(verdicts[0], uncertain=False), dataclasses.replace(verdicts[1], uncertain=True),
              verdicts[2]]  # the unreadable photo: nothing to be uncertain about
    text = render_sheet(banded, [None] * 3, "m.tflite")
    assert '<td class="fake">fake (uncertain)</td>' in text and '<td class="real">real</td>' in text
    assert "1 verdict(s) uncertain: p(fake) close to the threshold" in text
    plain = render_sheet(verdicts, [None] * 4, "m.tflite")  # a model without a band
    assert "(uncertain)" not in plain and "verdict(s) uncertain" not in plain


def test_preview_follows_exif_rotation_and_never_raises(tmp_path):
    wide = Image.new("RGB", (400, 200), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: the photo is 200 wide and 400 tall as every stage sees it
    wide.save(tmp_path / "turned.jpg", exif=exif)
    data, size = thumbnail(str(tmp_path / "turned.jpg"))
    assert size == (200, 400) and Image.open(io.BytesIO(base64.b64decode(data))).size == (80, 160)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "turned.jpg").read_bytes()[:300])
    assert thumbnail(str(tmp_path / "cut.jpg")) is None and thumbnail(str(tmp_path / "missing.jpg")) is None


def test_empty_sheet_renders():
    assert Sheet(render_sheet([], [], "m.tflite")).rows == []


# Injected into a copy of the page: records script errors, then clicks a header button `clicks` times.
PROBE = """<script>window.addEventListener("error", function (e) {
  document.documentElement.setAttribute("data-errors", e.message); });</script>"""
CLICK = """<script>for (var i = 0; i < %d; i++) {
  document.querySelector('th[data-sort="%s"] button').click(); }</script>"""


def rows_after_clicks(tmp_path, page: str, key: str, clicks: int):
    probed = page.replace("<head>", "<head>" + PROBE).replace("</body>", CLICK % (clicks, key) + "</body>")
    path = tmp_path / f"clicked_{key}_{clicks}.html"
    path.write_text(probed, encoding="utf-8")
    proc = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    errors = re.search(r'<html[^>]* data-errors="([^"]*)"', proc.stdout)
    assert errors is None, errors.group(1)
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == []  # no script error, no warning, nothing logged
    return [p.rsplit("/", 1)[-1] for p, _ in Sheet(proc.stdout).rows]


def test_sheet_sorts_by_p_fake_in_headless_chromium(verdicts, tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("FAKELENS_REQUIRE_CHROMIUM"):
            pytest.fail(f"FAKELENS_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is absent")
    page = write_sheet(verdicts, tmp_path / "v.html", "m.tflite").read_text(encoding="utf-8")
    assert rows_after_clicks(tmp_path, page, "p", 0) == ["a.jpg", "b.jpg", "bad.jpg", "<c>&.png"]
    assert rows_after_clicks(tmp_path, page, "p", 1) == ["b.jpg", "<c>&.png", "a.jpg", "bad.jpg"]  # most fake first
    assert rows_after_clicks(tmp_path, page, "p", 2) == ["a.jpg", "<c>&.png", "b.jpg", "bad.jpg"]  # errors stay last
    assert rows_after_clicks(tmp_path, page, "path", 1) == ["<c>&.png", "a.jpg", "b.jpg", "bad.jpg"]
