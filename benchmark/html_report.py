"""The benchmark result as one self-contained HTML page: tables, ROC curves, robustness,
invariance, uncertain verdicts, quantisation damage, latency and Grad-CAM galleries.

Everything is inside the one file (inline CSS, plots and images as data: URIs, no scripts, no
external links), so the page can be mailed, archived with a run or opened offline. Tables 1-2,
the detection metrics and the held-out table come from the same Markdown renderers as
benchmark.md, so both reports always show the same numbers in the same layout.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from matplotlib.figure import Figure

from convert.variants import REFERENCE
from benchmark.invariance import render_invariance
from benchmark.tables import render_detection, render_held_out, render_table
from benchmark.uncertainty import render_uncertain
from train.io import atomic_write_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #f6f7f9; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #dde1e6; padding-bottom: 4px; }
h3 { margin-top: 28px; } .meta { color: #555; } nav { margin: 16px 0; line-height: 1.8; }
nav a { margin-right: 16px; color: #1a5fb4; text-decoration: none; white-space: nowrap; }
.scroll { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d5db; padding: 4px 8px; vertical-align: top; white-space: nowrap; }
th { background: #eef1f5; text-align: left; } tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.caption { font-weight: 600; margin: 16px 0 4px; } ul.notes { color: #555; font-size: 13px; margin-top: 0; }
img.plot { max-width: 100%; border: 1px solid #e3e6ea; margin: 8px 0; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; padding: 6px; border: 1px solid #e3e6ea; background: #fafbfc; }
figure img { width: 160px; height: 160px; image-rendering: auto; display: inline-block; }
figcaption { font-size: 12px; color: #444; max-width: 330px; word-break: break-all; }
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    """An HTML table of already formatted cell texts; numeric columns are right-aligned."""
    cls = lambda i: ' class="num"' if numeric[i] else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def markdown_to_html(markdown: str) -> str:
    """The Markdown the table renderers write — caption lines, one pipe table, "- " notes — as HTML."""
    out, table, notes = [], [], []

    def flush():
        if table:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
            numeric = [c.endswith(":") for c in cells[1]]  # the alignment row: ---: is right-aligned
            out.append(_table(cells[0], cells[2:], numeric))
            table.clear()
        if notes:
            out.append('<ul class="notes">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
            notes.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            notes.append(line[2:])
            continue
        flush()
        if line.strip():
            out.append(f'<p class="caption">{_esc(line)}</p>')
    flush()
    return "\n".join(out)


def _fmt(spec: str):
    return lambda v: format(v, spec)


def _rows_table(rows: list[dict], columns: list[tuple]) -> str:
    """Table of dict rows; columns: (key, header, format function). Columns no row has are left
    out and missing values show as "–", so older or partial results still render."""
    present = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    numeric = [all(isinstance(r.get(key), (int, float)) for r in rows if r.get(key) is not None)
               for key, _, _ in present]
    cells = [[fmt(r[key]) if r.get(key) is not None else "–" for key, _, fmt in present] for r in rows]
    return _table([h for _, h, _ in present], cells, numeric)


def png_data_uri(png_base64: str) -> str:
    return f"data:image/png;base64,{png_base64}"


def _plot(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return f'<img class="plot" alt="{_esc(alt)}" src="{png_data_uri(base64.b64encode(buf.getvalue()).decode())}">'


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _section(anchor: str, title: str, body: str) -> tuple[str, str, str]:
    return anchor, title, f'<section id="{anchor}"><h2>{_esc(title)}</h2>\n{body}</section>'


def accuracy_section(models: dict) -> list[tuple[str, str, str]]:
    """Tables 1-2, detection metrics and held-out generators, as in benchmark.md."""
    parts = [render_table(1, models), render_table(2, models), render_detection(models), render_held_out(models)]
    body = "\n".join(markdown_to_html(md) for md in parts if md)
    return [_section("accuracy", "Accuracy", body)] if models else []


def roc_section(models: dict) -> list[tuple[str, str, str]]:
    """ROC curves, one plot per 50:50 set with a curve per model."""
    sets = list(dict.fromkeys(s for r in models.values() for s, m in r["sets"].items() if m.get("roc")))
    if not sets:
        return []
    plots = []
    for set_name in sets:
        fig = Figure(figsize=(6.4, 5.2))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1, label="chance")
        for name, r in models.items():
            m = r["sets"].get(set_name, {})
            if m.get("roc"):
                auc = m.get("detail", {}).get("auc")
                label = f"{name} (AUC {auc:.3f})" if _finite(auc) else name
                ax.plot(m["roc"]["fpr"], m["roc"]["tpr"], drawstyle="steps-post", linewidth=1.5, label=label)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false-positive rate (reals called fake)",
               ylabel="true-positive rate (fakes caught)", title=f"ROC: {set_name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        plots.append(_plot(fig, f"ROC curves on {set_name}"))
    return [_section("roc", "ROC curves (50:50 sets, fake = positive)", "\n".join(plots))]


def robustness_section(rows: list[dict]) -> list[tuple[str, str, str]]:
    """Per test set: accuracy per condition as a line per model, and the numbers as a table."""
    if not rows:
        return []
    body = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        subset = [r for r in rows if r["set"] == set_name]
        conditions = list(dict.fromkeys(r["condition"] for r in subset))
        models = list(dict.fromkeys(r["model"] for r in subset))
        cell = {(r["model"], r["condition"]): r for r in subset}
        fig = Figure(figsize=(max(6.4, 0.9 * len(conditions)), 4.2))
        ax = fig.add_subplot()
        for model in models:
            xs = [i for i, c in enumerate(conditions) if (model, c) in cell]
            ax.plot(xs, [cell[(model, conditions[i])]["accuracy"] for i in xs], marker="o", label=model)
        ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right")
        ax.set(ylim=(-0.02, 1.02), ylabel="accuracy", title=f"Robustness: {set_name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        body.append(f'<h3>{_esc(set_name)}</h3>' + _plot(fig, f"accuracy per condition on {set_name}"))

        def text(r):
            if r is None:
                return "–"
            auc = f" / {r['auc']:.3f}" if _finite(r.get("auc")) else ""
            return f"{r['accuracy']:.3f}{auc} (n={r['n']})" if "n" in r else f"{r['accuracy']:.3f}{auc}"

        body.append('<p class="caption">accuracy / ROC AUC per condition</p>' + _table(
            ["model"] + conditions, [[m] + [text(cell.get((m, c))) for c in conditions] for m in models],
            [False] + [True] * len(conditions)))
    return [_section("robustness", "Robustness to image changes", "\n".join(body))]


def invariance_section(rows: list[dict]) -> list[tuple[str, str, str]]:
    """Flip rates and per-source shares called fake under each probe, as in benchmark.md."""
    return [_section("invariance", "Invariance", markdown_to_html(render_invariance(rows)))] if rows else []


def uncertain_section(rows: list[dict]) -> list[tuple[str, str, str]]:
    """Uncertain verdicts and the errors among them (benchmark/uncertainty.py)."""
    return [_section("uncertain", "Uncertain verdicts", markdown_to_html(render_uncertain(rows)))] if rows else []


def _worst(item) -> str:
    """One of the worst-disagreeing images of a quantisation row, briefly: file name and numbers."""
    if not isinstance(item, dict):
        return str(item)
    return ", ".join(Path(str(v)).name if k == "path" else f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in item.items())


QUANTIZATION_COLUMNS = [
    ("run", "run", str), ("model", "model", str), ("reference", "reference", str), ("variant", "variant", str),
    ("set", "set", str), ("n", "n", str), ("agreement", "decision agreement", _fmt(".3f")),
    ("mean_abs_diff", "mean |Δp|", _fmt(".4f")), ("max_abs_diff", "max |Δp|", _fmt(".4f")),
    ("delta_acc_points", "Δ accuracy (points)", _fmt("+.1f")), ("delta_auc_points", "Δ AUC (points)", _fmt("+.1f")),
]

LATENCY_COLUMNS = [
    ("model", "model", str), ("variant", "variant", str), ("threads", "threads", str),
    ("size_bytes", "size (KiB)", lambda v: f"{v / 1024:.0f}"), ("size_ratio", "size ratio", _fmt(".2f")),
    ("p50_ms", "p50 ms", _fmt(".2f")), ("p90_ms", "p90 ms", _fmt(".2f")), ("p99_ms", "p99 ms", _fmt(".2f")),
    ("cold_ms", "cold ms", _fmt(".1f")), ("peak_mib", "peak MiB", _fmt(".1f")), ("ratio", "p50 ratio", _fmt(".2f")),
]


def quantization_section(rows: list[dict]) -> list[tuple[str, str, str]]:
    if not rows:
        return []
    note = ('<p class="caption">How far each quantised model moves from its float32 reference on the same '
            "images: decision agreement, p(fake) differences, accuracy and AUC change in percentage points</p>")
    worst = [f"{r.get('model', '')} on {r.get('set', '')}: " + "; ".join(_worst(w) for w in r["worst"])
             for r in rows if r.get("worst")]
    notes = ('<p class="caption">largest |Δp| images</p><ul class="notes">'
             + "".join(f"<li>{_esc(w)}</li>" for w in worst) + "</ul>") if worst else ""
    return [_section("quantization", "Quantisation damage", note + _rows_table(rows, QUANTIZATION_COLUMNS) + notes)]


def latency_section(rows: list[dict]) -> list[tuple[str, str, str]]:
    """The latency table and a bar chart of p50 against float32 of the same run (ratios measured
    in one run are what carries over to other machines; absolute milliseconds do not)."""
    if not rows:
        return []
    body = ['<p class="caption">ai-edge-litert interpreter, one image; ratio = p50 / float32 p50 of the same run '
            "and thread count, measured in this run</p>", _rows_table(rows, LATENCY_COLUMNS)]
    bars = [r for r in rows if _finite(r.get("ratio")) and r.get("variant") != REFERENCE]  # the reference is the 1.0 line
    if bars:
        fig = Figure(figsize=(7.5, 0.8 + 0.28 * len(bars)))
        ax = fig.add_subplot()
        labels = [f"{r['model']} · {r['threads']} thr" if "threads" in r else r["model"] for r in bars]
        ax.barh(range(len(bars)), [r["ratio"] for r in bars], color="#e66100")
        ax.set_yticks(range(len(bars)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="#333", linewidth=1)
        ax.set(xlabel="p50 latency / float32 p50 of the same run (lower is faster)", title="Latency ratio")
        ax.grid(axis="x", alpha=0.3)
        body.append(_plot(fig, "p50 latency ratio per model"))
    return [_section("latency", "Latency", "\n".join(body))]


def _share(value) -> str:
    return f"{value:.2f}" if _finite(value) else "–"


def gradcam_section(galleries: dict) -> list[tuple[str, str, str]]:
    """Per model: heat share outside the central box per category, then the overlays."""
    if not galleries:
        return []
    body = []
    for model, g in galleries.items():
        cats = g["categories"]
        body.append(f"<h3>{_esc(model)}</h3><p class=\"meta\">run {_esc(g['run'])} · threshold {g['threshold']:.3f} · "
                    f"input {g['input_size']} px{' · ELA' if g['ela'] else ''} · heat towards the class each image was "
                    f"called</p>")
        body.append(f'<p class="caption">share of Grad-CAM heat outside the central box '
                    f'({g["centre"]:.0%} of each side; {1 - g["centre"] ** 2:.2f} if spread evenly)</p>' + _table(
                        ["category", "shown / available", "mean", "median"],
                        [[f"{key.replace('_', ' ')} ({c['description']})", f"{len(c['items'])} / {c['n_available']}",
                          _share(c["heat_outside_centre_mean"]), _share(c["heat_outside_centre_median"])]
                         for key, c in cats.items()], [False, True, True, True]))
        names = {"input": "ELA map (model input)" if g["ela"] else "model input", "rgb": "photo"}
        for key, c in cats.items():
            if not c["items"]:
                continue
            figures = []
            for it in c["items"]:
                imgs = "".join(f'<img alt="{_esc(names.get(k, k))}: {_esc(Path(it["path"]).name)}" '
                               f'title="{_esc(names.get(k, k))}" src="{png_data_uri(b64)}">'
                               for k, b64 in sorted(it["images"].items(), key=lambda kv: kv[0] != "rgb"))
                figures.append(f"<figure>{imgs}<figcaption>{_esc(Path(it['path']).name)} · {_esc(it['source'])}"
                               f"<br>p(fake) {it['p_fake']:.3f} · outside centre {_share(it['heat_outside_centre'])}"
                               f"</figcaption></figure>")
            body.append(f"<h4>{_esc(key.replace('_', ' '))}: {_esc(c['description'])}</h4>"
                        f'<div class="gallery">{"".join(figures)}</div>')
    return [_section("gradcam", "Grad-CAM galleries", "\n".join(body))]


def render_html(result: dict) -> str:
    """The whole page; sections whose data the result lacks are left out."""
    models = result.get("models") or {}
    sections = (accuracy_section(models) + roc_section(models) + robustness_section(result.get("robustness") or [])
                + invariance_section(result.get("invariance") or [])
                + uncertain_section(result.get("uncertain") or [])
                + quantization_section(result.get("quantization") or []) + latency_section(result.get("latency") or [])
                + gradcam_section(result.get("gradcam") or {}))
    nav = " ".join(f'<a href="#{anchor}">{_esc(title)}</a>' for anchor, title, _ in sections)
    skipped = len(result.get("skipped") or [])
    skipped_note = f'<p class="meta">{skipped} image(s) could not be read and were skipped (skipped.csv).</p>' \
        if skipped else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>FakeLens benchmark</title><style>{CSS}</style></head>\n<body><main>"
            f"<h1>FakeLens benchmark</h1><p class=\"meta\">Data: <code>{_esc(result.get('data', ''))}</code></p>"
            f"{skipped_note}<nav>{nav}</nav>\n" + "\n".join(s for _, _, s in sections) + "\n</main></body></html>\n")


def write_html(result: dict, path: str | Path) -> Path:
    """Write the report page to `path` atomically and return the path."""
    path = Path(path)
    atomic_write_text(path, render_html(result))
    return path
