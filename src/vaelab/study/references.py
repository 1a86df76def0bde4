"""What the study's measures give on images whose answer is known: the reference rows.

A Fréchet distance, a precision or a recall of prior samples says little alone. The same measure,
computed the same way against the same test set, is reported for four sets that are not samples
of any model (``vaelab.evaluation.probes``):

- ``real``: images of the dataset's training file, never the test set — the best any model can
  do (a ceiling; the classifier learnt from these images, the VAE from most of them);
- ``noise``, ``shuffled`` (pixels permuted), ``blends`` (two images of different classes
  averaged) — floors a model that draws real images must beat.

``feature_check`` says whether the classifier's features order them as they must be ordered
(real far better than every floor); a measure whose floors reach the ceiling cannot tell real
images from noise, and the report leaves it out of its conclusions. ``abstention_rates`` measures
how often the classifier refuses clean test images, blends, blurred images, noise and shuffled
images, for the Method section.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.evaluation import probes
from vaelab.evaluation.classifier import UNCLEAR, Classifier, Outputs
from vaelab.evaluation.sample_quality import RealSupport, feature_quality
from vaelab.study.noise import MARGIN

if TYPE_CHECKING:
    from vaelab.data.datasets import Splits

__all__ = ["ABSTENTION_NAMES", "BLUR_SIGMA", "FLOORS", "REFERENCE_NAMES", "abstention_rates",
           "feature_check", "reference_rows", "share_se"]

BLUR_SIGMA = 1.5  # pixels: the blurred probe of the abstention rates
FLOORS = ("noise", "shuffled", "blends")
REFERENCE_NAMES = {
    "real": "real images of the training file (not the test set)",
    "noise": "uniform noise",
    "shuffled": "real images, pixels shuffled by one permutation",
    "blends": "blends of two real images of different classes",
}
ABSTENTION_NAMES = {
    "clean": "clean test images",
    "blends": "blends of two test images of different classes",
    "blurred": f"test images blurred (Gaussian, sigma {BLUR_SIGMA:g} px)",
    "noise": "uniform noise",
    "shuffled": "test images, pixels shuffled (a kind never trained on)",
}
_SEEDS = {"pick": 11, "noise": 12, "shuffled": 13, "blends": 14, "test blends": 15,
          "test shuffled": 16}


def share_se(share: float, n: int) -> float:
    """The standard error sqrt(p (1 - p) / n) of a share of n independent images."""
    return math.sqrt(max(share * (1 - share), 0.0) / max(n, 1))


def _training_pool(splits: Splits) -> tuple[np.ndarray, np.ndarray | None]:
    images = np.concatenate([splits.train_images, splits.val_images])
    if splits.train_labels is None or splits.val_labels is None:
        return images, None
    return images, np.concatenate([splits.train_labels, splits.val_labels])


def reference_rows(classifier: Classifier, splits: Splits, test_features: np.ndarray,
                   support: RealSupport, n: int, noise: torch.Tensor | None = None
                   ) -> dict[str, dict[str, Any]]:
    """kind -> {fd, precision, recall, n, precision_se, recall_se}, each against the test set.

    ``n`` images per set (the study's prior-sample count, fewer when the training file is
    smaller); ``noise``: the uniform-noise images when the caller has them already.
    """
    pool, labels = _training_pool(splits)
    n = min(n, len(pool))
    pick = np.sort(np.random.default_rng(_SEEDS["pick"]).choice(len(pool), n, replace=False))
    sets = {"real": torch.from_numpy(pool[pick]).unsqueeze(1).float().div_(255),
            "noise": noise[:n] if noise is not None else probes.uniform_noise(n, _SEEDS["noise"]),
            "shuffled": probes.shuffled(pool[pick], _SEEDS["shuffled"])}
    if labels is not None:
        sets["blends"] = probes.blends(pool, labels, n, _SEEDS["blends"])
    rows = {}
    for kind, images in sets.items():
        quality = feature_quality(test_features, classifier.features(images), support.k,
                                  support)
        rows[kind] = {**quality.to_dict(), "precision_se": share_se(quality.precision, n),
                      "recall_se": share_se(quality.recall, len(test_features))}
    return rows


def feature_check(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the reference rows come out in the order a valid feature space gives.

    Precision and recall: the real images' share exceeds every floor's by more than ``MARGIN``
    combined standard errors of a share. Fréchet distance: the real images' is below every
    floor's. Returns, per measure, "ordered" and the floors that fail.
    """
    real = rows["real"]
    out: dict[str, Any] = {}
    for measure in ("precision", "recall"):
        failing = [kind for kind in FLOORS if kind in rows
                   and real[measure] - rows[kind][measure]
                   <= MARGIN * math.hypot(real[f"{measure}_se"], rows[kind][f"{measure}_se"])]
        out[measure] = {"ordered": not failing, "failing": failing}
    failing = [kind for kind in FLOORS if kind in rows and rows[kind]["fd"] <= real["fd"]]
    out["fd"] = {"ordered": not failing, "failing": failing}
    return out


def abstention_rates(classifier: Classifier, splits: Splits, min_confidence: float,
                     clean: Outputs, noise: torch.Tensor) -> dict[str, Any]:
    """The share of each probe set the classifier refuses, with its standard error: "none of
    these", or a class below ``min_confidence`` (the study's rule, ``latent.abstain``).

    ``clean``: the classifier's outputs on the test images (the caller has them); ``noise``:
    uniform-noise images, at least as many as the test set.
    """
    from vaelab.study.latent import abstain

    test = splits.test_images
    n = len(test)
    sets: dict[str, torch.Tensor | None] = {
        "clean": None,
        "blurred": probes.blurred(test, BLUR_SIGMA),
        "noise": noise[:n],
        "shuffled": probes.shuffled(test, _SEEDS["test shuffled"]),
    }
    if splits.test_labels is not None:
        sets["blends"] = probes.blends(test, splits.test_labels, n, _SEEDS["test blends"])
    out: dict[str, Any] = {"n": n, "blur_sigma": BLUR_SIGMA, "min_confidence": min_confidence,
                           "rates": {}}
    for kind in ABSTENTION_NAMES:
        if kind not in sets:
            continue
        images = sets[kind]
        labels, confidence = ((clean.labels, clean.confidence) if images is None
                              else classifier.predict(images))
        share = float((abstain(labels, confidence, min_confidence) == UNCLEAR).mean())
        out["rates"][kind] = {"refused": share, "se": share_se(share, n)}
    return out
