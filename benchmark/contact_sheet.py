"""`python -m benchmark.predict --html FILE`: the verdicts as one self-contained HTML page.

A contact sheet: one row per photo with a small preview (JPEG thumbnail inside the page), the
faces that were judged drawn on it, label, p(fake) and the model's threshold, and each
unreadable photo's error. Clicking "p(fake)" sorts the rows (most fake first, then the reverse),
clicking "path" sorts by path; a few lines of inline script do it. Like the benchmark report
(benchmark/html_report.py, whose style it shares) the page needs nothing outside the one file.
Previews are made for the page only and never scored: they may decode JPEGs at reduced size.
"""
from __future__ import annotations

import base64
import html
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from PIL import Image
from tqdm import tqdm

from benchmark.detector import Prediction
from benchmark.html_report import CSS
from ela import read_image_bytes, to_rgb
from train.io import atomic_write_text

THUMB_PX = 160  # longer side of a preview
EXIF_ORIENTATION = 0x0112
TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height

SHEET_CSS = """
.thumb { position: relative; display: inline-block; line-height: 0; }
.thumb img { max-width: 160px; max-height: 160px; }
.thumb .face { position: absolute; box-sizing: border-box; border: 2px solid #2a7d2a; }
.thumb .face.fake { border-color: #c01c28; }
.nopreview { display: inline-block; width: 160px; color: #888; font-size: 12px; }
td.real { color: #2a7d2a; font-weight: 600; } td.fake { color: #c01c28; font-weight: 600; }
td.error { color: #c01c28; white-space: normal; max-width: 420px; }
td.unsteady { color: #b5581a; white-space: normal; max-width: 240px; } td.steady { color: #555; }
td.path { white-space: normal; word-break: break-all; max-width: 360px; }
th button { font: inherit; font-weight: 600; background: none; border: none; padding: 0; cursor: pointer;
            color: #1a5fb4; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
"""

# Sorts the rows by a header's data-sort key: numbers most fake first on the first click, text
# A-Z; rows without a value (unreadable photos) always last.
SORT_SCRIPT = """
document.querySelectorAll("th[data-sort] button").forEach(function (button) {
  button.addEventListener("click", function () {
    var th = button.parentElement, key = th.dataset.sort, numeric = th.dataset.type === "number";
    var descending = th.getAttribute("aria-sort") ? th.getAttribute("aria-sort") === "ascending" : numeric;
    var tbody = document.querySelector("#verdicts tbody");
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = a.dataset[key], y = b.dataset[key];
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { tbody.appendChild(row); });
    document.querySelectorAll("th[data-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  });
});
"""


def thumbnail(path: str) -> tuple[str, tuple[int, int]] | None:
    """A preview of the photo as base64 JPEG (longer side at most THUMB_PX) and the size of the
    full photo as every stage sees it (EXIF rotation applied); None when it cannot be read —
    a preview never stops the page."""
    try:
        with Image.open(io.BytesIO(read_image_bytes(path))) as img:  # regular files only: never a FIFO
            width, height = img.size
            if img.getexif().get(EXIF_ORIENTATION, 1) in TRANSPOSED:
                width, height = height, width
            img.draft("RGB", (THUMB_PX, THUMB_PX))  # JPEG: decode at 1/2..1/8 scale, still >= THUMB_PX
            small = to_rgb(img)
        small.thumbnail((THUMB_PX, THUMB_PX), Image.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=80)
    except Exception:  # noqa: BLE001 — any damage Pillow reports in its own way; the row shows the error
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii"), (width, height)


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _preview(verdict: Prediction, thumb: tuple[str, tuple[int, int]] | None) -> str:
    """The preview with each judged face outlined (red: fake, green: real), as CSS boxes placed
    in percent of the full photo, so they sit right on the thumbnail whatever its scale."""
    if thumb is None:
        return '<span class="nopreview">no preview</span>'
    data, (width, height) = thumb
    boxes = ""
    for i, face in enumerate(verdict.faces or (), 1):
        x, y, w, h = face.box
        style = (f"left:{100 * x / width:.2f}%;top:{100 * y / height:.2f}%;"
                 f"width:{100 * w / width:.2f}%;height:{100 * h / height:.2f}%")
        title = f"face {i}: {face.label}, p(fake) {face.p_fake:.3f}, detector confidence {face.confidence:.2f}"
        boxes += f'<span class="face {_esc(face.label)}" style="{style}" title="{_esc(title)}"></span>'
    return f'<span class="thumb"><img src="data:image/jpeg;base64,{data}" alt="">{boxes}</span>'


def _faces_cell(verdict: Prediction) -> str:
    if verdict.error or verdict.faces is None:
        return ""
    if not verdict.faces:
        return "no face found: whole image scored"
    return "; ".join(f"{f.label} {f.p_fake:.3f} at {f.box[0]},{f.box[1]} ({f.box[2]}×{f.box[3]})"
                     for f in verdict.faces)


def _probes_cell(verdict: Prediction) -> str:
    if not verdict.unsteady:
        return "steady"
    return "unsteady: changes under " + ", ".join(verdict.unsteady)


def _row(verdict: Prediction, thumb, probes: bool) -> str:
    p = "" if verdict.p_fake is None else f"{verdict.p_fake:.6f}"
    cells = [f"<td>{_preview(verdict, thumb)}</td>", f'<td class="path">{_esc(verdict.path)}</td>']
    if verdict.error:
        cells.append(f'<td class="error" colspan="{3 + (verdict.faces is not None) + probes}">'
                     f"{_esc(verdict.error)}</td>")
    else:
        label = verdict.label + (" (uncertain)" if verdict.uncertain else "")
        cells += [f'<td class="{_esc(verdict.label)}">{_esc(label)}</td>',
                  f'<td class="num">{verdict.p_fake:.3f}</td>', f'<td class="num">{verdict.threshold:.3f}</td>']
        if verdict.faces is not None:
            cells.append(f'<td class="path">{_esc(_faces_cell(verdict))}</td>')
        if probes:
            cells.append(f'<td class="{"unsteady" if verdict.unsteady else "steady"}">'
                         f'{_esc(_probes_cell(verdict))}</td>')
    return f'<tr data-p="{p}" data-path="{_esc(verdict.path)}">' + "".join(cells) + "</tr>"


def render_sheet(verdicts: Sequence[Prediction], thumbs: Sequence, model: str) -> str:
    """The whole page for `verdicts` and their previews (None where there is none)."""
    faces = any(v.faces is not None for v in verdicts)
    probes = any(v.unsteady is not None for v in verdicts)
    failed = sum(bool(v.error) for v in verdicts)
    fake = sum(v.label == "fake" for v in verdicts)
    threshold = verdicts[0].threshold if verdicts else float("nan")
    header = ('<th>photo</th><th data-sort="path" data-type="text"><button type="button">path</button></th>'
              '<th>label</th><th class="num" data-sort="p" data-type="number"><button type="button">p(fake)'
              '</button></th><th class="num">threshold</th>' + ("<th>faces</th>" if faces else "")
              + ("<th>probes</th>" if probes else ""))
    summary = (f"{len(verdicts)} photo(s): {fake} fake, {len(verdicts) - fake - failed} real"
               + (f", {failed} could not be read" if failed else "")
               + f". Fake when p(fake) ≥ {threshold:.3f}, the model's threshold."
               + (" Each face found is judged on its own (red: fake, green: real); a photo is as fake as its "
                  "most fake face." if faces else "")
               + (f" {sum(bool(v.uncertain) for v in verdicts)} verdict(s) uncertain: p(fake) close to the threshold, "
                  "where the model's verdicts are least reliable." if any(v.uncertain is not None for v in verdicts)
                  else "")
               + (f" {sum(bool(v.unsteady) for v in verdicts)} verdict(s) change under a probe (a re-save, rescale, "
                  "crop, mirror image or greyscale copy): doubt those." if probes else ""))
    rows = "\n".join(_row(v, t, probes) for v, t in zip(verdicts, thumbs))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>FakeLens verdicts</title><style>{CSS}{SHEET_CSS}</style></head>\n<body><main>"
            f"<h1>FakeLens verdicts</h1><p class=\"meta\">Model: <code>{_esc(model)}</code></p>"
            f"<p class=\"meta\">{_esc(summary)}</p>\n"
            f'<div class="scroll"><table id="verdicts"><thead><tr>{header}</tr></thead><tbody>\n{rows}\n'
            f"</tbody></table></div>\n</main><script>{SORT_SCRIPT}</script></body></html>\n")


def write_sheet(verdicts: Sequence[Prediction], path: str | Path, model: str, threads: int | None = None) -> Path:
    """Make the previews (in parallel) and write the page to `path` atomically."""
    with ThreadPoolExecutor(threads) as pool:
        thumbs = list(tqdm(pool.map(thumbnail, [v.path for v in verdicts]), total=len(verdicts), desc="previews",
                           unit="img", leave=False, disable=len(verdicts) < 2))
    path = Path(path)
    atomic_write_text(path, render_sheet(verdicts, thumbs, model))
    return path
