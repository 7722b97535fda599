"""The model card of an export: what the model is for, what it was trained on, how to feed it,
how well it did on validation, where it is known to fail, and how to make it again.

`python -m convert` writes it as MODEL_CARD.md beside the .tflite files and packs the same text
into each of them (convert.metadata.CARD_FILE), so a model carries its card. Every number in it
comes from the run's own records (config.json written by training, the conversion check) or
is computed from the data at export (counts, manifest hash, format audit); the warnings of
"Known failure modes" summarise the project's measurements in docs/results.md without numbers.

The invariance probes run in `python -m benchmark`, after the export: the benchmark writes a
copy of the card with that section filled in (`with_invariance`) into its own report folder,
and never touches the export.
"""
from __future__ import annotations

import collections
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from convert.metadata import CARD_FILE, INFO_FILE, INPUT_MEAN, INPUT_STD, ModelInfo
from convert.variants import CALIBRATION_SIZE, REFERENCE, shift_warnings, variant
from train.configs import set_items
from train.data import SPLITS, Record, manifest_file, manifest_sha256, select, source_licences
from train.format_audit import STRONG, read_properties, shortcuts, strongest
from train.metrics import UNCERTAIN_SHARE, describe_target

if TYPE_CHECKING:  # only a type here: importing it would load TensorFlow for the card
    from train.run_folder import Run

INVARIANCE_HEADING = "## Invariance probes"
CARDS_FOLDER = "cards"  # the benchmark's copies: <report>/cards/<model>.md


@dataclass(frozen=True)
class SourceFacts:
    """One source of the dataset: its label, images per split in the data, images training used
    per split (after caps and unreadable files), and its licences as the data states them."""
    source: str
    label: str
    splits: dict[str, int]
    used: dict[str, int]
    licences: tuple[str, ...]


@dataclass(frozen=True)
class DataFacts:
    path: str  # the dataset read at export
    manifest_sha256: str | None  # of its manifest now (None: a folder dataset)
    trained_path: str  # the dataset training read, as recorded
    trained_manifest_sha256: str | None  # as recorded by training (None: not recorded)
    trained_sources: tuple[str, ...]
    sources: tuple[SourceFacts, ...]


@dataclass(frozen=True)
class Validation:
    """The run's validation result as training recorded it."""
    n: int
    accuracy: float
    auc: float | None  # None: trained before training recorded it
    loss_weighted: bool  # accuracy weighted like the loss (cfg.data.balance)


@dataclass(frozen=True)
class VariantCheck:
    """Convert's check of one exported variant against the float32 export."""
    variant: str
    input_dtype: str
    output_dtype: str
    n: int | None = None  # None: no float32 reference or no check images
    decision_agreement: float | None = None
    mean_abs_diff: float | None = None
    max_abs_diff: float | None = None
    warnings: tuple[str, ...] = ()  # sources whose share called fake moved (variants.shift_warnings)
    threshold: float | None = None  # the decision threshold in this file's metadata
    uncertain_band: tuple[float, float] | None = None  # the band of uncertain verdicts in its metadata
    uncertain_val: tuple[int, int, int, int] | None = None  # on validation: images, uncertain, wrong among them,
    # wrong among the rest


@dataclass(frozen=True)
class FormatVerdict:
    """The format-bias audit on the model's training sources (train.format_audit)."""
    protocol: str
    properties: str  # the property combination that separates the classes best
    accuracy: float
    n: int
    skipped: int
    augmented: bool  # training augmented both classes against such cues

    @property
    def strong(self) -> bool:
        return self.accuracy > STRONG


@dataclass(frozen=True)
class CardFacts:
    run: str
    info: ModelInfo  # what the metadata of every variant says (name and variant aside)
    protocol: str
    models: tuple[str, ...]  # the exported files' names (without .tflite), one per variant
    variants: tuple[str, ...]
    export_folder: str
    data: DataFacts
    validation: Validation
    checks: tuple[VariantCheck, ...]
    audit: FormatVerdict | None  # None: the data has no test split of the training sources
    train_command: str | None  # None: the run's config is not a named config
    convert_command: str
    threshold_target: str | None = None  # each file's threshold was chosen on validation for this target


def _table(header: Sequence[str], rows: Sequence[Sequence], align: str = "") -> list[str]:
    align = align or "-" * len(header)
    marks = {"-": "---", ":": "---:"}
    return ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def _intended_use() -> list[str]:
    return ["## Intended use", "",
            "- Screening single face photos for signs of full AI generation (GAN or diffusion), on a phone or a "
            "server, as one signal for a person who makes the decision.",
            "- Research: comparing detectors and training recipes on the same data.", "",
            "## Out-of-scope use", "",
            "- Sole evidence in a decision about a person (identity, accusation, moderation without review): a "
            "score is one model's estimate, not proof.",
            "- Images that are not a single face photo (scenes, documents, drawings), video, face swaps and "
            "local edits of real photos: FakeLens is made and measured for fully generated face images.",
            "- Generators and kinds of photo unlike the training data, before validating on them (see *Known "
            "failure modes*); deliberate evasion was not tested."]


def _data_section(d: DataFacts) -> list[str]:
    lines = ["## Training data", ""]
    sha = f"manifest sha256 `{d.manifest_sha256}`" if d.manifest_sha256 else "a folder dataset (no manifest)"
    lines.append(f"Dataset `{d.path}`, {sha}.")
    if d.trained_manifest_sha256 is None:
        lines.append("Training did not record its manifest's hash (a run from before it did, or a folder dataset).")
    elif d.trained_manifest_sha256 != d.manifest_sha256 or d.trained_path != d.path:
        lines.append(f"**Training read another version of the data**: `{d.trained_path}`, manifest sha256 "
                     f"`{d.trained_manifest_sha256}`; the counts below are of the data read at export.")
    else:
        lines.append("Training recorded the same manifest hash.")
    lines += ["", f"Trained on {', '.join(f'`{s}`' for s in d.trained_sources)}: their train split to fit, their "
              "validation split to choose the best epoch; test splits are left to the benchmark. Images per "
              "split in the data (used by training, after any per-source cap and unreadable files, in brackets):", ""]
    rows = []
    totals: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for s in d.sources:
        trained = s.source in d.trained_sources
        cells = [f"{s.splits.get(split, 0)}" + (f" ({s.used.get(split, 0)})" if trained and split != "test" else "")
                 for split in SPLITS]
        licence = "; ".join(s.licences).replace("|", "\\|") if s.licences else "not stated in the data"
        rows.append([f"`{s.source}`" + ("" if trained else " (not trained on)"), s.label, *cells, licence])
        totals[s.label].update({split: s.splits.get(split, 0) for split in SPLITS})
        totals[s.label].update({f"used_{split}": s.used.get(split, 0) for split in SPLITS} if trained else {})
    for label in sorted(totals, key=lambda lab: lab != "real"):
        t = totals[label]
        rows.append([f"**all {label}**", label, *(f"{t[split]}" + (f" ({t['used_' + split]})" if split != "test" else "")
                                                  for split in SPLITS), ""])
    lines += _table(["source", "label", *SPLITS, "licence (as the data states it)"], rows, "--:::-")
    lines += ["", "The weights are derived from these images: several licences are research-only, non-commercial "
              "or not stated, so check them before any use beyond research."]
    return lines


def _preprocessing_section(info: ModelInfo, checks: Sequence[VariantCheck], threshold_target: str | None = None
                           ) -> list[str]:
    prep = info.preprocessing
    size = prep.input_size
    dtypes = ", ".join(f"{c.variant} export: {c.input_dtype} input" for c in checks)
    lines = ["## Preprocessing (from the model's metadata, `fakelens.json`)", "",
             f"- Input: one RGB image, resized (bilinear) to {size}×{size}, pixel values 0..255 ({dtypes}); "
             f"normalisation mean {INPUT_MEAN:g}, std {INPUT_STD:g}: the model rescales to MobileNet's [-1, 1] itself."]
    fc = prep.format_control
    lines.append("- Format control: none, files are used as they are." if fc is None else
                 f"- Format control: every image is first resized to {size}×{size} and re-encoded as JPEG at a "
                 f"quality drawn by its content hash from {fc.quality_min}..{fc.quality_max}, whatever its class.")
    ela = prep.ela
    if ela is None:
        lines.append("- ELA: none, the model sees the image itself.")
    else:
        scale = "stretched so the largest difference is 255" if ela.scale == "auto" else f"multiplied by {ela.scale:g}"
        where = ("on the decoded image, then resized" if ela.resolution == "full"
                 else f"on the {size}×{size} resized image")
        who = "inside the model (it takes the resized RGB image)" if info.ela_in_graph else "by the caller"
        lines.append(f"- ELA: JPEG re-save at quality {ela.quality}, absolute difference {scale}, computed {where}, "
                     f"{who}.")
    if info.mirror_average:
        lines.append("- Mirror average: the model scores the image and its left-right mirror image and averages "
                     "the two (as logits), so a mirrored photo gets exactly the same score.")
    offsets = info.extra.get("tail_offsets")
    if offsets:
        how = ("chosen on the validation split by `--tail_offset auto`" if info.extra.get("tail_offsets_chosen_by")
               else "given by `--tail_offset`")
        lines.append("- Tails: fake when the largest of the tails' fake-minus-real logits, each after its offset ("
                     + ", ".join(f"{source} {offset:+g}" for source, offset in offsets.items()) + f", {how}), is "
                     "over the threshold.")
    if threshold_target is None:
        decision = f"p(fake) ≥ {info.threshold:g}"
    else:
        decision = (f"p(fake) ≥ its own file's threshold, chosen on the validation split for {threshold_target} "
                    f"({describe_target(threshold_target)}): "
                    + ", ".join(f"{c.variant} {c.threshold:g}" for c in checks))
    lines.append(f"- Output: softmax over {list(info.labels)}; the decision is fake when {decision}"
                 + (f" (threshold {info.baked_threshold:g} baked into the last layer: any client's top class is the "
                    f"decision)." if info.baked_threshold is not None else "."))
    banded = [c for c in checks if c.uncertain_band is not None]
    if banded:
        lines.append("- Uncertain verdicts: p(fake) strictly inside the file's band around its threshold, which holds "
                     f"{UNCERTAIN_SHARE:.0%} of the validation verdicts (`uncertain_band` in {INFO_FILE}; "
                     "`benchmark.predict` marks them): "
                     + "; ".join(f"{c.variant} {c.uncertain_band[0]:.4f}–{c.uncertain_band[1]:.4f} (on validation "
                                 f"{c.uncertain_val[2]} of {c.uncertain_val[1]} uncertain verdicts wrong, "
                                 f"{c.uncertain_val[3]} of the other {c.uncertain_val[0] - c.uncertain_val[1]})"
                                 for c in banded) + ".")
    return lines


def _validation_section(run: str, v: Validation, checks: Sequence[VariantCheck]) -> list[str]:
    weighted = (" (weighted like the training loss: each class, and each source within it, counts equally)"
                if v.loss_weighted else "")
    auc = f"{v.auc:.3f}" if v.auc is not None else "not recorded (trained before training recorded it)"
    lines = ["## Validation", "",
             f"As recorded by training in `{run}/config.json`, the Keras model at its best epoch (lowest "
             f"validation loss) on the validation split of its sources, n={v.n}: accuracy {v.accuracy:.3f}"
             f"{weighted}; ROC AUC {auc}.", ""]
    checked = [c for c in checks if c.n and c.variant != REFERENCE]
    if checked:
        lines += ["Each export against the float32 export, on validation images (convert's check; each file at its "
                  "threshold above):", ""]
        lines += _table(["variant", "input / output", "n", "decisions agree with float32", "mean |Δp(fake)|",
                         "max |Δp(fake)|"],
                        [[c.variant, f"{c.input_dtype} / {c.output_dtype}", c.n, f"{c.decision_agreement:.3f}",
                          f"{c.mean_abs_diff:.4f}", f"{c.max_abs_diff:.4f}"] for c in checked], "--::::")
        lines += [line for c in checked for w in c.warnings for line in ("", f"**Warning:** {w}.")]
    else:
        lines.append("No other export checked against a float32 export (export float32 with them for the agreement "
                     "check).")
    return lines


def _audit_section(a: FormatVerdict | None, data: DataFacts) -> list[str]:
    lines = ["## Format-bias audit of the training data", ""]
    if a is None:
        return lines + ["Not computed: the training sources have no readable test split in this data."]
    files = "as stored" if a.protocol == "as_is" else "as the format-controlled protocol re-encodes them"
    lines.append(f"Can file properties alone (format, JPEG quality, chroma subsampling, size of the files {files}) tell "
                 f"real from fake among {', '.join(f'`{s}`' for s in data.trained_sources)}? A lookup from the "
                 f"properties to the majority label of the train split, scored on the balanced test split "
                 f"(n={a.n}, chance 0.5), does best with *{a.properties.replace('+', ' + ')}*: accuracy "
                 f"{a.accuracy:.3f}" + (f" ({a.skipped} unreadable file(s) left out)." if a.skipped else "."))
    lines.append("")
    if a.strong:
        lines.append(f"**Verdict: shortcut.** Above {STRONG:g}, the files alone separate the classes: a detector can "
                     f"learn how each class was stored instead of the image"
                     + (". Training augmented both classes against such cues (JPEG re-saves, rescales, crops); the "
                        "benchmark's invariance probes measure whether the model still follows them."
                        if a.augmented else "; train under `--protocol controlled` or with augmentation."))
    else:
        lines.append(f"**Verdict: no strong shortcut** (at most {STRONG:g}): file properties alone do not separate "
                     f"the classes of this data.")
    return lines


def _failure_section(d: DataFacts) -> list[str]:
    by_label = collections.defaultdict(lambda: ([], []))
    for s in d.sources:
        by_label[s.label][s.source not in d.trained_sources].append(f"`{s.source}`")
    seen_fake, unseen_fake = by_label["fake"]
    seen_real, unseen_real = by_label["real"]
    none = "none"
    return ["## Known failure modes", "",
            "From the project's measurements (docs/results.md); this model's own numbers on such images are in the "
            "benchmark's report.", "",
            "- **Generators it never saw.** Detectors of this kind do not carry over reliably to other generators: "
            "in the leave-one-generator-out runs a model trained without diffusion images ranked diffusion faces "
            "worse than chance, and a held-out GAN was mostly missed; even a detector trained on both catches "
            "fakes of never-seen diffusion models far less often than those it trained on. This model trained on "
            f"fakes of {', '.join(seen_fake) or none}; fake sources of this data it never saw: "
            f"{', '.join(unseen_fake) or none}.",
            "- **Real photos of other kinds.** A detector learns what *its* real photos look like: real photos from "
            "other collections — aligned high-resolution portraits like those GANs imitate, studio portraits, news "
            "photos, other cameras, greyscale — are called fake more often than its validation split shows, and "
            "the real collection it trained on can itself keep a high false-positive rate. This model trained on "
            f"reals of {', '.join(seen_real) or none}; real sources of this data it never saw: "
            f"{', '.join(unseen_real) or none}.",
            "- **Quantised copies differ.** An int8 export need not take the float32 decision on every image (see "
            "the agreement above)."]


def _invariance_placeholder(facts: CardFacts) -> list[str]:
    folder = facts.export_folder
    return [INVARIANCE_HEADING, "",
            "Not measured at export: `python -m convert` runs before the benchmark. The benchmark's probes (PNG and "
            "JPEG re-saves, rescales, a crop, mirroring, greyscale: changes that must not change a decision) are "
            f"added by `python -m benchmark --models {shlex.quote(folder)} --data DATA --out REPORT`, which writes "
            f"this card with this section filled in as `REPORT/{CARDS_FOLDER}/<model>.md` for each of "
            f"{', '.join(f'`{m}`' for m in facts.models)}; the export is left as it is."]


def render_card(facts: CardFacts) -> str:
    """The model card as Markdown, from its typed inputs."""
    info = facts.info
    lines = [f"# Model card: {facts.run}", "",
             f"{info.description.rstrip('.')}. Config `{info.config}`, protocol `{facts.protocol}`, FakeLens "
             f"{info.version}; variants {', '.join(facts.variants)} in `{facts.export_folder}`. This card is "
             f"packed into each of their .tflite files as `{CARD_FILE}`.", ""]
    lines += _intended_use() + [""]
    lines += _data_section(facts.data) + [""]
    lines += _preprocessing_section(info, facts.checks, facts.threshold_target) + [""]
    lines += _validation_section(facts.run, facts.validation, facts.checks) + [""]
    lines += _audit_section(facts.audit, facts.data) + [""]
    lines += _failure_section(facts.data) + [""]
    lines += _invariance_placeholder(facts) + [""]
    lines += ["## How to reproduce", "", "```sh"]
    lines.append(facts.train_command or "# the run's config is not a named one: its config.json holds all of it")
    lines += [facts.convert_command, "```", ""]
    return "\n".join(lines)


def with_invariance(card: str, section: str) -> str:
    """`card` with its invariance section's text replaced by `section` (Markdown without the heading)."""
    start = card.index(INVARIANCE_HEADING)
    end = card.find("\n## ", start + len(INVARIANCE_HEADING))
    return card[:start] + f"{INVARIANCE_HEADING}\n\n{section.strip()}\n" + (card[end:] if end >= 0 else "")


def format_verdict(records: Sequence[Record], run: Run) -> FormatVerdict | None:
    """The format-bias audit (train.format_audit) on the run's sources, files as its protocol presents them."""
    cfg = run.config
    prep = cfg.preprocessing()
    needed = select(records, cfg.data.sources, ["train", "test"])
    props, skipped = read_properties(needed, prep.format_control, prep.input_size)
    result = shortcuts(needed, props, cfg.data.sources)
    if not result:
        return None
    name, best = strongest(result)
    return FormatVerdict(cfg.data.protocol, name, best["accuracy"], best["n"], len(skipped), cfg.data.augment is not None)


def data_facts(records: Sequence[Record], data: str | Path, run: Run) -> DataFacts:
    counts = collections.Counter((r.source, r.split) for r in records)
    labels = {r.source: r.label for r in records}
    manifest = manifest_file(data)
    licences = source_licences(manifest) if manifest is not None else {}
    used = run.summary["data"].get("counts", {})
    sources = tuple(SourceFacts(src, labels[src], {split: counts[src, split] for split in SPLITS},
                                {split: used.get(f"{src}/{split}", 0) for split in SPLITS},
                                tuple(licences.get(src, ())))
                    for src in sorted(labels, key=lambda s: (labels[s] != "real", s)))
    return DataFacts(str(Path(data).resolve()), manifest_sha256(data), run.summary["data"]["path"],
                     run.summary["data"].get("manifest_sha256"), tuple(run.config.data.sources), sources)


def train_command(run: Run) -> str | None:
    """`python -m train ...` that trains this run again (same config, data and output folder)."""
    cfg, training = run.config, run.summary.get("training", {})
    try:
        items = set_items(cfg)
    except ValueError:  # not a named config
        return None
    out = run.folder.with_name(run.name) if run.tail else run.folder  # a tail's run trains into a folder of its own
    args = ["python", "-m", "train", "--config", cfg.name, "--data", run.summary["data"]["path"], "--out", str(out)]
    for flag, default in (("strategy", "default"), ("lr_scaling", "linear")):
        if training.get(flag, default) != default:
            args += [f"--{flag}", training[flag]]
    for item in items:
        args += ["--set", item]
    return shlex.join(args)


def convert_command(run: Run, out: str | Path | None, variants: Sequence[str], data: str | None, threshold: float,
                    check_images: int, ela_in_graph: bool, qat_epochs: int, qat_learning_rate: float,
                    bake: bool = False, calibration_size: int = CALIBRATION_SIZE, mirror_average: bool = False,
                    qat_augment: bool = False, threshold_target: str | None = None,
                    qat_label_weight: float = 0.0, tail_offsets: dict[str, float] | str | None = None) -> str:
    """`python -m convert ...` with the settings of this export."""
    args = ["python", "-m", "convert", "--run", str(run.folder)]
    if run.tail:
        args += ["--tail", run.tail]
    if isinstance(tail_offsets, str):  # "auto": the command chooses them again
        args += ["--tail_offset", tail_offsets]
    elif tail_offsets:
        args += ["--tail_offset", ",".join(f"{source}={offset:g}" for source, offset in tail_offsets.items())]
    if out is not None:
        args += ["--out", str(out)]
    args += ["--variants", ",".join(variants)]
    if data is not None:
        args += ["--data", str(data)]
    args += ["--threshold_target", threshold_target] if threshold_target else ["--threshold", f"{threshold:g}"]
    args += ["--check_images", str(check_images)]
    if ela_in_graph:
        args.append("--ela_in_graph")
    if bake:
        args.append("--bake_threshold")
    if mirror_average:
        args.append("--mirror_average")
    if any(variant(v).integer for v in variants) and calibration_size != CALIBRATION_SIZE:
        args += ["--calibration_size", str(calibration_size)]
    if any(variant(v).needs_training for v in variants):
        args += ["--qat_epochs", str(qat_epochs), "--qat_learning_rate", f"{qat_learning_rate:g}"]
        if qat_augment:
            args.append("--qat_augment")
        if qat_label_weight:
            args += ["--qat_label_weight", f"{qat_label_weight:g}"]
    return shlex.join(args)


def uncertain_facts(point: dict) -> dict:
    """VariantCheck's uncertain-band fields from a conversion report's operating point."""
    if "uncertain_band" not in point:
        return {}
    return {"uncertain_band": tuple(point["uncertain_band"]),
            "uncertain_val": (point["n"], point["val_uncertain"], point["val_wrong_uncertain"],
                              point["val_wrong_certain"])}


def export_card(run: Run, records: Sequence[Record], data: str | Path, info: ModelInfo, reports: Sequence[dict],
                export_folder: str | Path, convert_cmd: str) -> str:
    """The card of one export of `run`: `info` is the metadata its variants share, `reports` convert's checks."""
    result = run.summary.get("result", {})
    validation = Validation(int(result["n_val"]), float(result["val_accuracy"]), result.get("val_auc"),
                            run.config.data.balance)
    checks = tuple(VariantCheck(r["variant"], r["input_dtype"], r["output_dtype"], **r.get("vs_float32", {}),
                                warnings=tuple(shift_warnings(r["variant"], r.get("by_source", {}))),
                                threshold=r.get("threshold"), **uncertain_facts(r.get("operating_point", {})))
                   for r in reports)
    target = next((r["operating_point"]["target"] for r in reports if "operating_point" in r), None)
    facts = CardFacts(run.name, info, run.config.data.protocol, tuple(Path(r["path"]).stem for r in reports),
                      tuple(r["variant"] for r in reports), str(export_folder),
                      data_facts(records, data, run), validation, checks, format_verdict(records, run),
                      train_command(run), convert_cmd, target)
    return render_card(facts)
