"""Grad-CAM: where in the image a model's decision comes from.

The paper reports that false positives focus on the background rather than the face. The faces
in the data are roughly centred, so the share of heat outside a central box is a simple number
for that claim; the gallery shows true/false positives/negatives with their heat maps so the
number can be checked by eye. Heat is computed on the Keras model of a run, on exactly the input
the model sees (ELA map for ELA models), and drawn over both that input and the resized photo.
"""
from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tf_keras

from train.run_folder import load_run
from ela import read_image
from train.data import Record

# Categories with fake as the positive class: (truth is fake, called fake).
CATEGORIES = {
    "true_positive": ("fake called fake", True, True),
    "false_negative": ("fake called real", True, False),
    "false_positive": ("real called fake", False, True),
    "true_negative": ("real called real", False, False),
}
OVERLAY_STRENGTH = 0.6  # colour share where heat is 1; where heat is 0 the image shows unchanged


def last_conv_layers(model: tf_keras.Model) -> list[tf_keras.layers.Layer]:
    """The layers whose 4-D (batch, height, width, channels) output feeds a layer without one: the
    deepest activations that still keep the image's layout, on each path to the head (one for a
    single classifier, one per tail for experts); everything after them is pooling and the head."""
    producer = {id(layer.output): layer for layer in model.layers}
    found = []
    for layer in model.layers:
        if len(layer.output.shape) != 4:
            for tensor in tf.nest.flatten(layer.input):
                source = producer.get(id(tensor))
                if source is not None and len(source.output.shape) == 4 and source not in found:
                    found.append(source)
    if not found:
        raise ValueError(f"model {model.name} has no layer with a 4-D output to compute Grad-CAM on")
    return found


def grad_cam(model: tf_keras.Model, image: np.ndarray, class_index: int = 1) -> np.ndarray:
    """Grad-CAM heat (H, W) in [0, 1] at the input's resolution for one model input (H, W, 3).

    The score differentiated is the log-odds of `class_index` (its logit minus the other's),
    read before the final softmax: the softmax saturates at confident outputs and its gradient
    vanishes, while the log-odds are what the decision actually thresholds. An all-zero map
    means no region raises the score.
    """
    head = model.layers[-1]
    if not isinstance(head, tf_keras.layers.Dense) or head.units != 2:
        raise ValueError(f"model {model.name} does not end in a 2-way Dense layer (got {head.name})")
    convs = last_conv_layers(model)
    probe = tf_keras.Model(model.inputs, [*(conv.output for conv in convs), head.input])
    x = tf.convert_to_tensor(image[None], tf.float32)
    with tf.GradientTape() as tape:
        *activations, features = probe(x, training=False)
        logits = tf.matmul(features, head.kernel) + head.bias
        score = logits[:, class_index] - logits[:, 1 - class_index]
    # each channel weighted by its mean gradient; experts' tails summed (the one that decides has the gradient)
    weighted = [tf.reduce_sum(a[0] * tf.reduce_mean(g[0], axis=(0, 1)), axis=-1)
                for a, g in zip(activations, tape.gradient(score, activations))]
    cam = tf.nn.relu(tf.add_n(weighted)).numpy().astype(np.float32)
    height, width = image.shape[:2]
    heat = np.asarray(Image.fromarray(cam, "F").resize((width, height), Image.BILINEAR))
    peak = float(heat.max())
    return np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros((height, width), np.float32)


def heat_outside_centre(heat: np.ndarray, centre: float = 0.5) -> float:
    """Share of the heat mass outside the central box that spans `centre` of each side
    (0: all heat on the centred face, 1: all on the border); nan for an all-zero map."""
    total = float(heat.sum())
    if total <= 0:
        return float("nan")
    height, width = heat.shape
    top, left = round(height * (1 - centre) / 2), round(width * (1 - centre) / 2)
    inside = float(heat[top:top + round(height * centre), left:left + round(width * centre)].sum())
    return 1.0 - inside / total


def overlay_png(image: np.ndarray, heat: np.ndarray) -> str:
    """`image` (H, W, 3 uint8) with `heat` drawn over it in the jet colour map, as base64 PNG."""
    colour = colormaps["jet"](heat)[..., :3] * 255
    alpha = OVERLAY_STRENGTH * heat[..., None]
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colour
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), "RGB").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _summary(values: list[float | None]) -> dict:
    finite = [v for v in values if v is not None]
    return {"heat_outside_centre_mean": float(np.mean(finite)) if finite else None,
            "heat_outside_centre_median": float(np.median(finite)) if finite else None}


def gallery(run_folder: str | Path, records: list[Record], scores: dict, threshold: float, per_cell: int = 3,
            seed: int = 0, centre: float = 0.5) -> dict:
    """Grad-CAM for up to `per_cell` randomly chosen images of each category (true/false
    positives/negatives, fake = positive, decided by `scores` — path → p(fake) — at `threshold`),
    with the heat share outside the centre per image and per category. Heat points towards the
    class each image was called: it shows the evidence behind the decision, right or wrong
    (towards the other class it is often all zero).

    Images: "input" is the overlay on what the model saw; ELA models also get "rgb", the overlay
    on the resized photo the ELA map came from. `scores` may come from any export of the run
    (e.g. its int8 .tflite); the heat always comes from the run's Keras model. Returns a
    JSON-serialisable dict.
    """
    run = load_run(run_folder)
    prep = run.config.preprocessing()
    photo = dataclasses.replace(prep, ela=None)  # the same path without ELA: the photo at input size
    known = {str(path): float(p) for path, p in scores.items()}
    rng = np.random.default_rng(seed)
    categories = {}
    for key, (description, is_fake, called_fake) in CATEGORIES.items():
        pool = [r for r in records if str(r.path) in known
                and (r.label == "fake") == is_fake and (known[str(r.path)] >= threshold) == called_fake]
        chosen = sorted(rng.choice(len(pool), min(per_cell, len(pool)), replace=False).tolist()) if pool else []
        items = []
        for r in (pool[i] for i in chosen):
            img, sha = read_image(r.path)
            model_input = prep.apply(img, sha)
            heat = grad_cam(run.model, model_input, class_index=int(called_fake))
            images = {"input": overlay_png(model_input, heat)}
            if prep.ela is not None:
                images["rgb"] = overlay_png(photo.apply(img, sha), heat)
            share = heat_outside_centre(heat, centre)
            items.append({"path": str(r.path), "source": r.source, "label": r.label, "p_fake": known[str(r.path)],
                          "heat_outside_centre": share if np.isfinite(share) else None,  # JSON has no nan
                          "images": images})
        categories[key] = {"description": description, "heat_towards": "fake" if called_fake else "real",
                           "n_available": len(pool), "items": items,
                           **_summary([it["heat_outside_centre"] for it in items])}
    return {"run": str(run.folder), "model": run.name, "threshold": float(threshold), "input_size": prep.input_size,
            "ela": prep.ela is not None, "centre": centre, "categories": categories}


def render_gradcam(galleries: dict) -> str:
    """Markdown: per run and decision category, the share of Grad-CAM heat outside the centre box
    (the paper's "false positives look at the background" observation, as a number)."""
    if not galleries:
        return ""
    centre = next(iter(galleries.values()))["centre"]
    lines = [f"Grad-CAM: share of heat outside the central {centre:.0%} × {centre:.0%} box, mean / median over "
             f"the sampled images (n shown of available); images in report.html", "",
             "| model | " + " | ".join(CATEGORIES) + " |", "|---|" + "---:|" * len(CATEGORIES)]
    for name, g in galleries.items():
        cells = []
        for key in CATEGORIES:
            c = g["categories"][key]
            mean, median = c["heat_outside_centre_mean"], c["heat_outside_centre_median"]
            share = "–" if mean is None else f"{mean:.2f} / {median:.2f}"
            cells.append(f"{share} (n={len(c['items'])} of {c['n_available']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
