"""The model card of each benchmarked model, completed with what only the benchmark measures:
`<report>/cards/<model>.md` is the card `python -m convert` packed into the model, with its
invariance section filled in from this run's probes. The export itself is never modified."""
from __future__ import annotations

from pathlib import Path

from benchmark.invariance import render_invariance
from convert.metadata import read_model_card
from convert.model_card import CARDS_FOLDER, with_invariance
from train.io import atomic_write_text


def invariance_section(model: str, rows: list[dict], data: str, split: str, out: Path) -> str:
    """The card's invariance section for `model` from the benchmark's invariance rows."""
    mine = [r for r in rows if r["model"] == model]
    if not mine:
        return (f"Not measured: the benchmark of `{out}` ran without invariance probes (`--invariance none`); run "
                f"it with them to fill this section.")
    return (f"Measured by `python -m benchmark` on `{data}`, {split} split (report `{out}`).\n\n"
            + render_invariance(mine))


def write_cards(result: dict, out: str | Path) -> list[Path]:
    """Write the completed card of every benchmarked model that carries one; return their paths."""
    out = Path(out)
    written = []
    for name, model in result["models"].items():
        card = read_model_card(model["path"])
        if not card:
            continue  # exported before models carried a card
        section = invariance_section(name, result.get("invariance", []), result["data"], result.get("split", "test"),
                                     out)
        path = out / CARDS_FOLDER / f"{name}.md"
        atomic_write_text(path, with_invariance(card, section))
        written.append(path)
    return written
