"""Accuracy in the layout of the paper's Tables 1 and 2, with n, 95% intervals and the paper's
own numbers side by side.

Table 1: 50:50 real/fake test sets (GAN faces; Stable Diffusion scenes, as the shared data has no
SD faces with a training split). Table 2: fake-only sets per SD version, where accuracy is the
share called fake. Which sources make each set is declared here once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from train.configs import PAPER_COLUMN
from train.data import Record, balance, select


@dataclass(frozen=True)
class TestSet:
    name: str
    table: int
    fake_sources: tuple[str, ...]
    real_sources: tuple[str, ...] = ()
    note: str = ""

    def records(self, records: list[Record]) -> list[Record]:
        chosen = select(records, self.real_sources + self.fake_sources, ["test"])
        return balance(chosen) if self.real_sources else chosen


TEST_SETS = (
    TestSet("GAN", 1, ("gan_faces",), ("real_ciplab",), "real_ciplab vs gan_faces test splits, balanced 50:50"),
    TestSet("Stable Diffusion", 1, ("sd11_scenes",), ("real_scenes",),
            "SD 1.1 scenes vs real scenes (not faces), balanced 50:50"),
    TestSet("SD1.5", 2, ("sd15",), note="fake only: SD 1.5 (ComfyUI outputs, mostly scenes)"),
    TestSet("SD2.1", 2, ("sd20",), note="fake only: SD 2.0-base stands in for 2.1 (n=5 near-duplicates)"),
    TestSet("SD XL1.0", 2, ("sdxl_faces",), note="fake only: SDXL 1.0 faces"),
)

# The paper's Tables 1-2, by training config.
PAPER = {
    "gan": {"GAN": 0.941, "Stable Diffusion": 0.516, "SD1.5": 0.015, "SD2.1": 0.015, "SD XL1.0": 0.030},
    "gan_ela": {"GAN": 0.834, "Stable Diffusion": 0.50, "SD1.5": 0.0, "SD2.1": 0.0, "SD XL1.0": 0.0},
    "gan_sd": {"GAN": 0.860, "Stable Diffusion": 0.98, "SD1.5": 1.0, "SD2.1": 1.0, "SD XL1.0": 1.0},
    "gan_sd_ela": {"GAN": 0.793, "Stable Diffusion": 1.0, "SD1.5": 1.0, "SD2.1": 1.0, "SD XL1.0": 1.0},
}


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sensible at 0, 1 and small n)."""
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy(y_true: np.ndarray, p_fake: np.ndarray, threshold: float) -> dict:
    pred = (p_fake >= threshold).astype(np.int64)
    correct = int((pred == y_true).sum())
    n = int(len(y_true))
    low, high = wilson_interval(correct, n)
    return {"n": n, "n_real": int((y_true == 0).sum()), "n_fake": int((y_true == 1).sum()),
            "accuracy": correct / n if n else math.nan, "ci95": [low, high]}


def render_table(table: int, results: dict[str, dict]) -> str:
    """Markdown: one row per test set of `table`; a column per model (accuracy [95% CI]), then the
    paper's number for each paper config the models reproduce.
    results: model name → {"config": ..., "sets": {test set: metrics from `accuracy`}}."""
    models = list(results)
    columns = sorted({PAPER_COLUMN[r["config"]] for r in results.values() if r["config"] in PAPER_COLUMN})
    header = "| test set | n | " + " | ".join(models + [f"paper: {c}" for c in columns]) + " |"
    lines = [f"Table {table}: " + ("accuracy on 50:50 real/fake test sets" if table == 1
                                   else "accuracy on fake-only sets (share called fake)"),
             "", header, "|---|---:|" + "---:|" * (len(models) + len(columns))]
    for ts in (t for t in TEST_SETS if t.table == table):
        cells, n_text = [], "–"
        for m in models:
            metrics = results[m]["sets"].get(ts.name)
            if not metrics or not metrics["n"]:
                cells.append("–")
                continue
            n_text = f"{metrics['n']}" + (f" ({metrics['n_real']}+{metrics['n_fake']})" if table == 1 else "")
            low, high = metrics["ci95"]
            cells.append(f"{metrics['accuracy']:.3f} [{low:.2f}, {high:.2f}]")
        cells += [f"{PAPER[c][ts.name]:.3f}" for c in columns]
        lines.append(f"| {ts.name} | {n_text} | " + " | ".join(cells) + " |")
    notes = [f"- {t.name}: {t.note}" for t in TEST_SETS if t.table == table]
    return "\n".join(lines + [""] + notes)
