"""Loss weights under which the content of a photo no longer tells real from fake.

Why: in `../shared/data` a 32-pixel thumbnail — framing, pose, skin tone, age, headwear, glasses,
background, and no generator trace (those live in the high frequencies a thumbnail drops) —
separates the real training images from the fakes at an out-of-fold ROC AUC of about 0.93
(`content_auc` in a run's config.json). The Stable Diffusion faces were prompted for diversity
(headscarves, turbans, glasses, ages) and the real collections were not, so a detector can score
well by learning *who* is in the photo: the real portraits it calls fake wear hats and glasses,
are older, or are not white. Augmentation cannot remove that cue (no crop or re-save changes who
is pictured); it has to be balanced between the classes.

So each training image's chance of being fake from its thumbnail alone is estimated out of fold
(a logistic regression on ImageNet MobileNet features of the thumbnail; no image scores itself),
and its loss weight is multiplied by the odds against its own label: a real photo whose content
looks fake counts more, as does a fake whose content looks real. The factor is clipped to
[1/clip, clip] and each source keeps its total weight, so class and source balance still hold.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from PIL import Image

from train.configs import TrainConfig
from train.data import Record, preprocess_records
from train.metrics import roc_auc
from train.model import FEATURES_LAYER, build_model

THUMBNAIL = 32  # pixels on a side: content survives, a generator's traces do not
FOLDS = 5
L2 = 100.0  # ridge strength of the content regression (10 and 1000 gave lower validation AUCs on ../shared/data)
STEPS, STEP_SIZE = 500, 0.1  # full-batch gradient descent on standardised features


def thumbnails(x: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 images reduced to THUMBNAIL pixels and scaled back up to S: content only."""
    size = x.shape[1]
    return np.stack([np.asarray(Image.fromarray(im).resize((THUMBNAIL, THUMBNAIL), Image.BOX)
                                .resize((size, size), Image.BILINEAR)) for im in x])


def content_features(x: np.ndarray, weights: str = "imagenet", alpha: float = 1.0) -> np.ndarray:
    """MobileNet features (global average pool; ImageNet start weights unless told) of the
    thumbnails of x (N, S, S, 3) uint8."""
    import tf_keras
    model = build_model(x.shape[1], alpha, weights, unfreeze=0)
    features = tf_keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    return features.predict(thumbnails(x).astype(np.float32), batch_size=64, verbose=0)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted ridge logistic regression: coefficients and intercept."""
    coef, bias = np.zeros(x.shape[1]), 0.0
    for _ in range(STEPS):
        g = (_sigmoid(x @ coef + bias) - y) * w
        coef -= STEP_SIZE * (x.T @ g / w.sum() + L2 * coef / len(y))
        bias -= STEP_SIZE * g.sum() / w.sum()
    return coef, bias


def content_regression(features: np.ndarray, y: np.ndarray, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """p(fake | content features), fitted on standardised features of labelled images."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    coef, bias = fit_logistic((features - mean) / std, y, w)
    return lambda f: _sigmoid((f - mean) / std @ coef + bias)


def out_of_fold_p_fake(features: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> np.ndarray:
    """p(fake | content) of each image from a regression fitted on the other folds."""
    folds = np.random.default_rng(seed).permutation(len(y)) % FOLDS
    p = np.zeros(len(y))
    for k in range(FOLDS):
        fit = folds != k
        p[~fit] = content_regression(features[fit], y[fit], w[fit])(features[~fit])
    return p


def reweight(p_fake: np.ndarray, y: np.ndarray, sources: list[str], base: np.ndarray, clip: float) -> np.ndarray:
    """`base` times the clipped odds against each image's label, rescaled so that every source
    keeps the total weight `base` gave it."""
    p = np.clip(p_fake, 1e-6, 1 - 1e-6)
    odds = np.where(y == 0, p / (1 - p), (1 - p) / p)
    w = base * np.clip(odds, 1 / clip, clip)
    sources = np.asarray(sources)
    for source in np.unique(sources):
        mine = sources == source
        w[mine] *= base[mine].sum() / w[mine].sum()
    return w.astype(np.float32)


def effective_share(w: np.ndarray, sources: list[str]) -> dict[str, float]:
    """Per source, the effective sample size of its weights as a share of its images (1 = uniform)."""
    sources = np.asarray(sources)
    return {s: round(float(w[sources == s].sum() ** 2 / (w[sources == s] ** 2).sum() / (sources == s).sum()), 3)
            for s in np.unique(sources)}


def content_balance(cfg: TrainConfig, records: list[Record], base: np.ndarray) -> tuple[np.ndarray, dict]:
    """The loss weights of `records` (the training images kept) with content balanced, and what it
    measured: the content AUC before and after weighting, and each source's effective share.

    The images are decoded here once more, as they are: the training views are augmented (a
    greyscale or cropped view would misstate the content) and may be ELA images. Once per run,
    under a minute of the thumbnail step's 2–3 minutes; a resumed run recomputes the same weights."""
    prep = dataclasses.replace(cfg.preprocessing(), ela=None)  # content is read from the photo, not its ELA
    x, y, kept, _ = preprocess_records(records, prep, "content thumbnails")
    if len(kept) != len(records):
        raise ValueError("content balance: the training images changed while the run read them")
    p_fake = out_of_fold_p_fake(content_features(x, cfg.model.weights, cfg.model.alpha), y, base, cfg.seed)
    sources = [r.source for r in records]
    w = reweight(p_fake, y, sources, base, cfg.data.content_balance)
    return w, {"clip": cfg.data.content_balance, "thumbnail_px": THUMBNAIL,
               "content_auc": round(roc_auc(y, p_fake, base), 4),
               "weighted_content_auc": round(roc_auc(y, p_fake, w), 4),
               "effective_share": effective_share(w, sources)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))
