"""Uncertain verdicts as a warning: how often the verdicts inside a model's uncertain band (p(fake)
close to the threshold; ModelInfo.uncertain_band, chosen on validation by `convert
--threshold_target`) are wrong on the test split, against the others, per test source.

Why per source: the band is chosen where validation verdicts sit, so it can only warn about
errors near the threshold. A generator the model never saw is mostly missed with confidence
(far below the threshold), which no band flags; the table shows that too, beside the sources
the model trained on.
"""
from __future__ import annotations

from pathlib import Path

from convert.metadata import ModelInfo
from benchmark.invariance import percent_of
from train.data import Record
from train.metrics import UNCERTAIN_SHARE


def uncertain_rows(infos: dict[str, ModelInfo], scores: dict[str, dict[Path, float]],
                   test_records: list[Record]) -> list[dict]:
    """Per model that carries a band, per test source and then for all its test images: images,
    uncertain verdicts, wrong verdicts among them and among the others."""
    rows = []
    for name, info in infos.items():
        if info.uncertain_band is None:
            continue
        groups = [(source, [r for r in test_records if r.source == source])
                  for source in sorted({r.source for r in test_records})] + [("all", test_records)]
        for group, records in groups:
            judged = [(r, scores[name][r.path]) for r in records if r.path in scores[name]]
            if not judged:
                continue
            uncertain = [info.is_uncertain(p) for _, p in judged]
            wrong = [(p >= info.threshold) != (r.y == 1) for r, p in judged]
            rows.append({"model": name, "variant": info.variant, "run": info.run, "group": group,
                         "band": list(info.uncertain_band), "n": len(judged), "n_uncertain": sum(uncertain),
                         "wrong_uncertain": sum(w and u for w, u in zip(wrong, uncertain)),
                         "wrong_certain": sum(w and not u for w, u in zip(wrong, uncertain))})
    return rows


def render_uncertain(rows: list[dict]) -> str:
    """Markdown: per model and test source, the uncertain verdicts and the errors among them."""
    if not rows:
        return ""
    lines = ["Uncertain verdicts as a warning: p(fake) inside the model's uncertain band (chosen on validation to "
             f"hold {UNCERTAIN_SHARE:.0%} of its verdicts; what `benchmark.predict` marks uncertain) and how often "
             "they are wrong, against the others", "",
             "| model | band | test source | images | uncertain | wrong among uncertain | wrong among certain "
             "| errors flagged |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n_certain, wrong = r["n"] - r["n_uncertain"], r["wrong_uncertain"] + r["wrong_certain"]
        lines.append(f"| {r['model']} | {r['band'][0]:.3f}–{r['band'][1]:.3f} | {r['group']} | {r['n']} | "
                     f"{r['n_uncertain']} ({percent_of(r['n_uncertain'], r['n'])}) | "
                     f"{r['wrong_uncertain']} ({percent_of(r['wrong_uncertain'], r['n_uncertain'])}) | "
                     f"{r['wrong_certain']} ({percent_of(r['wrong_certain'], n_certain)}) | "
                     f"{r['wrong_uncertain']} of {wrong} ({percent_of(r['wrong_uncertain'], wrong)}) |")
    return "\n".join(lines)
