"""Accuracy in the layout of the paper's Tables 1 and 2, with n, 95% intervals and the paper's
own numbers side by side.

Table 1: 50:50 real/fake test sets (CIPLAB real faces against GAN faces and against Stable
Diffusion 2.1 faces, faces against faces as in the paper). Table 2: fake-only sets per SD version,
where accuracy is the share called fake. Which sources make each set is declared here once.
"""
from __future__ import annotations

from dataclasses import dataclass

from train.data import Record, balance, select


@dataclass(frozen=True)
class TestSet:
    name: str
    table: int
    fake_sources: tuple[str, ...]
    real_sources: tuple[str, ...] = ()
    note: str = ""

    def records(self, records: list[Record], split: str = "test") -> list[Record]:
        """The set's images of `split` (the test split; validation to choose recipes without it)."""
        chosen = select(records, self.real_sources + self.fake_sources, [split])
        return balance(chosen) if self.real_sources else chosen


TEST_SETS = (
    TestSet("GAN", 1, ("gan_faces",), ("real_ciplab",), "real_ciplab vs gan_faces test splits, balanced 50:50"),
    TestSet("Stable Diffusion", 1, ("sd21_faces",), ("real_ciplab",),
            "real_ciplab vs sd21_faces (SD 2.1 faces) test splits, balanced 50:50"),
    TestSet("SD1.5", 2, ("sd15",), note="fake only: SD 1.5 (ComfyUI outputs, mostly scenes)"),
    TestSet("SD2.1", 2, ("sd21_faces",), note="fake only: SD 2.1 faces (test split; trained on by the GAN & SD configs)"),
    TestSet("SD XL1.0", 2, ("sdxl_faces",), note="fake only: SDXL 1.0 faces"),
)

# The paper's Tables 1-2, by training config.
PAPER = {
    "gan": {"GAN": 0.941, "Stable Diffusion": 0.516, "SD1.5": 0.015, "SD2.1": 0.015, "SD XL1.0": 0.030},
    "gan_ela": {"GAN": 0.834, "Stable Diffusion": 0.50, "SD1.5": 0.0, "SD2.1": 0.0, "SD XL1.0": 0.0},
    "gan_sd": {"GAN": 0.860, "Stable Diffusion": 0.98, "SD1.5": 1.0, "SD2.1": 1.0, "SD XL1.0": 1.0},
    "gan_sd_ela": {"GAN": 0.793, "Stable Diffusion": 1.0, "SD1.5": 1.0, "SD2.1": 1.0, "SD XL1.0": 1.0},
}
# Which paper column each training config (train/configs.py) reproduces.
PAPER_COLUMN = {"gan": "gan", "gan_ela": "gan_ela", "gan_sd": "gan_sd", "gan_sd_dropout": "gan_sd",
                "gan_sd_ela": "gan_sd_ela"}


def render_held_out(results: dict[str, dict]) -> str:
    """Markdown: per model, each fake source that was not in its training data — share called
    fake and ROC AUC against all real test images; "train" where the source was trained on."""
    sources = sorted({s for r in results.values() for s in r.get("held_out", {})})
    if not sources:
        return ""
    lines = ["Held-out generators: share of a fake source called fake / ROC AUC vs all real test images, "
             "for sources the model never saw in training", "",
             "| model | " + " | ".join(sources) + " |", "|---|" + "---:|" * len(sources)]
    for name, r in results.items():
        cells = []
        for s in sources:
            m = r.get("held_out", {}).get(s)
            cells.append("train" if s in r.get("train_sources", []) else
                         f"{m['accuracy']:.3f} / {m['auc']:.3f} (n={m['n_fake']})" if m else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_detection(results: dict[str, dict]) -> str:
    """Markdown: threshold-free and operating-point metrics on the 50:50 sets, with 95% intervals."""
    rows = [(name, set_name, m["detail"]) for name, r in results.items()
            for set_name, m in r["sets"].items() if m.get("detail")]
    if not rows:
        return ""
    ci = lambda d, k: f"{d[k]:.3f} [{d[k + '_ci95'][0]:.2f}, {d[k + '_ci95'][1]:.2f}]"  # noqa: E731
    lines = ["Detection metrics on the 50:50 sets (fake = positive; 95% intervals: stratified bootstrap)", "",
             "| model | set | balanced acc. | ROC AUC | avg. precision | EER | TPR @ 1% FPR | TPR @ 5% FPR | TN FP FN TP |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, set_name, d in rows:
        c = d["confusion"]
        lines.append(f"| {name} | {set_name} | {ci(d, 'balanced_accuracy')} | {ci(d, 'auc')} | "
                     f"{ci(d, 'average_precision')} | {ci(d, 'eer')} | {ci(d, 'tpr_at_fpr_1pct')} | "
                     f"{ci(d, 'tpr_at_fpr_5pct')} | {c['tn']} {c['fp']} {c['fn']} {c['tp']} |")
    return "\n".join(lines)


def render_table(table: int, results: dict[str, dict]) -> str:
    """Markdown: a column per test set of `table` (with its n), a row per model (accuracy and 95%
    interval), then a row per paper config that the models reproduce, with the paper's numbers.
    results: model name → {"config": ..., "sets": {test set: metrics from `accuracy`}}."""
    sets = [t for t in TEST_SETS if t.table == table]

    def n_text(ts: TestSet) -> str:
        m = next((r["sets"][ts.name] for r in results.values() if r["sets"].get(ts.name)), None)
        if not m:
            return "n=0"
        return f"n={m['n']}" + (f", {m['n_real']}+{m['n_fake']}" if table == 1 else "")

    title = ("accuracy on 50:50 real/fake test sets" if table == 1
             else "accuracy on fake-only sets (share called fake)")
    lines = [f"Table {table}: {title}", "",
             "| model | " + " | ".join(f"{t.name} ({n_text(t)})" for t in sets) + " |",
             "|---|" + "---:|" * len(sets)]
    for name, r in results.items():
        cells = []
        for t in sets:
            m = r["sets"].get(t.name)
            cells.append(f"{m['accuracy']:.3f} [{m['ci95'][0]:.2f}, {m['ci95'][1]:.2f}]" if m and m["n"] else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for column in sorted({PAPER_COLUMN[r["config"]] for r in results.values() if r["config"] in PAPER_COLUMN}):
        lines.append(f"| paper: {column} | " + " | ".join(f"{PAPER[column][t.name]:.3f}" for t in sets) + " |")
    return "\n".join(lines + [""] + [f"- {t.name}: {t.note}" for t in sets])
