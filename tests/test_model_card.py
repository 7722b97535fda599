import collections
import json
import re
import shlex
import zipfile
from pathlib import Path

import pytest

from convert.metadata import CARD_FILE, read_model_card, read_model_info
from convert.model_card import INVARIANCE_HEADING, with_invariance
from tests.conftest import TINY_CALIBRATION
from train.configs import get_config, override
from train.data import file_sha256, load_records

SECTIONS = ("## Intended use", "## Out-of-scope use", "## Training data", "## Preprocessing", "## Validation",
            "## Format-bias audit", "## Known failure modes", INVARIANCE_HEADING, "## How to reproduce")


@pytest.fixture(scope="module")
def card(tiny_export) -> str:
    return (Path(tiny_export["float32"]["path"]).parent / CARD_FILE).read_text(encoding="utf-8")


def table_rows(card: str) -> dict[str, list[str]]:
    """The training-data table's rows by source name: [label, train, val, test, licence]."""
    section = card[card.index("## Training data"):card.index("## Preprocessing")]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([^`]+)`[^|]*\|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    return rows


def test_card_has_every_section_in_order(card):
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions)


def test_card_counts_match_the_manifest_and_what_training_used(card, tiny_run, demo_data):
    counts = collections.Counter((r.source, r.split) for r in load_records(demo_data))
    used = json.loads((tiny_run / "config.json").read_text())["data"]["counts"]
    rows = table_rows(card)
    assert set(rows) == {source for source, _ in counts}
    for source, (label, train, val, test, licence) in rows.items():
        assert label in ("real", "fake") and "synthetic" in licence  # the demo manifest's license column
        for split, cell in zip(("train", "val", "test"), (train, val, test)):
            trained = used.get(f"{source}/{split}")  # a trained source: what training used, in brackets
            assert cell == f"{counts[source, split]}" + ("" if trained is None else f" ({trained})")
    assert "(not trained on)" in card and "`sd15` (not trained on)" in card  # test-only in the demo data


def test_card_names_the_manifest_hash_that_training_recorded(card, tiny_run, demo_data):
    sha = file_sha256(demo_data / "MANIFEST.csv")
    assert json.loads((tiny_run / "config.json").read_text())["data"]["manifest_sha256"] == sha
    assert f"manifest sha256 `{sha}`" in card and "Training recorded the same manifest hash." in card


def test_card_preprocessing_and_validation_match_the_metadata_and_the_records(card, tiny_export, tiny_run):
    info = read_model_info(tiny_export["float32"]["path"])
    prep = info.preprocessing
    section = card[card.index("## Preprocessing"):card.index("## Validation")]
    from tensorflow_lite_support.metadata.python import metadata as md
    meta = json.loads(md.MetadataDisplayer.with_model_file(tiny_export["int8"]["path"]).get_metadata_json())
    norm = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
    assert f"normalisation mean {norm['mean'][0]:g}, std {norm['std'][0]:g}" in section
    assert f"{prep.input_size}×{prep.input_size}" in section and "int8 export: uint8 input" in section
    assert f"quality {prep.ela.quality}, absolute difference multiplied by {prep.ela.scale:g}" in section
    assert "by the caller" in section and "Format control: none" in section
    assert f"fake when p(fake) ≥ {info.threshold:g}" in section

    result = json.loads((tiny_run / "config.json").read_text())["result"]
    section = card[card.index("## Validation"):card.index("## Format-bias audit")]
    assert f"n={result['n_val']}: accuracy {result['val_accuracy']:.3f}" in section
    assert 0.5 < result["val_auc"] <= 1.0 and f"ROC AUC {result['val_auc']:.3f}" in section
    vs = tiny_export["int8"]["vs_float32"]
    assert f"| int8 | uint8 / float32 | {vs['n']} | {vs['decision_agreement']:.3f} | {vs['mean_abs_diff']:.4f} |" in section
    assert "| float32 |" not in section  # not checked against itself


def test_card_warns_of_a_source_that_quantisation_moved():
    from convert.model_card import VariantCheck, Validation, _validation_section
    warning = "int8 calls 50% of the real_webmorph check images fake where float32 calls 0% (n=17): compare"
    checks = [VariantCheck("float32", "float32", "float32", 100, 1.0, 0.0, 0.0),
              VariantCheck("int8", "uint8", "float32", 100, 0.95, 0.05, 0.9, warnings=(warning,)),
              VariantCheck("float16", "float32", "float32", 100, 1.0, 0.001, 0.01)]
    lines = _validation_section("runs/x", Validation(100, 0.9, 0.95, True), checks)
    assert lines[-2:] == ["", f"**Warning:** {warning}."]
    assert sum("**Warning:**" in line for line in lines) == 1


def test_card_audit_flags_the_demo_datas_format_shortcut_and_lists_unseen_generators(card):
    audit = card[card.index("## Format-bias audit"):card.index("## Known failure modes")]
    assert "**Verdict: shortcut.**" in audit and "as stored" in audit  # the demo's reals and fakes differ in size
    failures = card[card.index("## Known failure modes"):card.index(INVARIANCE_HEADING)]
    assert "fake sources of this data it never saw: `sd15`, `sdxl_faces`" in failures
    invariance = card[card.index(INVARIANCE_HEADING):card.index("## How to reproduce")]
    assert "Not measured at export" in invariance and "`REPORT/cards/<model>.md` for each of `tiny_float32`, `tiny_int8`" in invariance


def test_card_train_command_trains_the_same_config(card, tiny_run):
    line = next(line for line in card.splitlines() if line.startswith("python -m train "))
    args = shlex.split(line)
    items = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    config = args[args.index("--config") + 1]
    run = json.loads((tiny_run / "config.json").read_text())
    assert args[args.index("--data") + 1] == run["data"]["path"] and args[args.index("--out") + 1] == str(tiny_run)
    from train.configs import TrainConfig
    assert override(get_config(config), items) == TrainConfig.from_dict(run["config"])
    convert = next(line for line in card.splitlines() if line.startswith("python -m convert "))
    assert shlex.split(convert)[3:] == ["--run", str(tiny_run), "--variants", "float32,int8", "--threshold", "0.5",
                                        "--check_images", "24", "--calibration_size", str(TINY_CALIBRATION)]


def test_every_export_carries_the_card_as_an_associated_file(card, tiny_export):
    from tensorflow_lite_support.metadata.python import metadata as md
    for report in tiny_export.values():
        with zipfile.ZipFile(report["path"]) as zf:  # a .tflite's associated files are a zip at its end
            assert zf.read(CARD_FILE).decode("utf-8") == card
        displayer = md.MetadataDisplayer.with_model_file(report["path"])
        assert CARD_FILE in displayer.get_packed_associated_file_list()
        assert read_model_card(report["path"]) == card
        assert Path(report["path"]).stat().st_size == report["size_bytes"]


def test_with_invariance_replaces_only_that_section(card):
    filled = with_invariance(card, "Measured: nothing flips.")
    before, after = card.split(INVARIANCE_HEADING)
    assert filled.startswith(before) and filled.endswith(after[after.index("\n## "):])
    assert f"{INVARIANCE_HEADING}\n\nMeasured: nothing flips.\n\n## How to reproduce" in filled
