"""One run of the study measured from its best checkpoint: the record results.json keeps.

Test losses, I_q and the marginal KL, active units, and with a classifier the prior samples'
classes, Fréchet distance, precision and recall, over ``draws`` independent prior draws (the
first is the one tables show; the others give the draw-to-draw noise of a one-seed study).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vaelab.data import Splits
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import Classifier
from vaelab.evaluation.sample_quality import RealSupport
from vaelab.runs.layout import RunDir
from vaelab.runs.rebuild import LoadedRun, load_run
from vaelab.study import latent
from vaelab.study.config import StudyConfig
from vaelab.study.stages import Stages

__all__ = ["DRAW_SEED_STEP", "Measured", "Reference", "measure_run", "prior_seed"]

DRAW_SEED_STEP = 1000  # draw d of the run with seed s decodes prior samples of seed s + 1000 d


def prior_seed(seed: int, draw: int) -> int:
    """The generator seed of a run's d-th prior draw; draw 0 is the run's own seed, so
    ``vaelab evaluate --fid --seed S`` reproduces the first draw of the run with seed S."""
    return seed + DRAW_SEED_STEP * draw


@dataclass(frozen=True)
class Reference:
    """What every run is compared with: the classifier, the test set's features and balls."""

    classifier: Classifier
    test_features: np.ndarray  # (N, HIDDEN_UNITS)
    support: RealSupport  # the test set's k-nearest-neighbour balls


@dataclass
class Measured:
    """A run's record and what the figures of single models need."""

    record: dict[str, Any]
    loaded: LoadedRun
    means: np.ndarray  # (N, z_dim) posterior means of the test images
    samples: torch.Tensor | None  # the first draw's decoded prior samples


def _load(config: StudyConfig, z_dim: int, seed: int, device: torch.device) -> LoadedRun:
    loaded = load_run(config.run_dir(z_dim, seed), which="best", device=device)
    if loaded.model.conditional:
        raise VaelabError(f"{config.run_dir(z_dim, seed)} holds a conditional model; the study "
                          "needs an unconditional one")
    return loaded


def measure_run(config: StudyConfig, z_dim: int, seed: int, splits: Splits,
                reference: Reference | None, device: torch.device, draws: int,
                stages: Stages | None = None) -> Measured:
    """Measure one (z_dim, seed) run; ``reference`` None: no classifier, no sample measures.
    ``stages`` (when given) receives the seconds of each measure."""
    from vaelab.evaluation.elbo import evaluate
    from vaelab.evaluation.information import information
    from vaelab.evaluation.sample_quality import feature_quality, prior_images

    timed = stages or Stages()
    with timed.time("checkpoint loading"):
        loaded = _load(config, z_dim, seed, device)
        model, run_dir = loaded.model, config.run_dir(z_dim, seed)
        binarize = loaded.config.binarize
        history = RunDir(run_dir).read_metrics()
    labels = (torch.from_numpy(splits.test_labels).long().to(device)
              if splits.test_labels is not None else None)
    with timed.time("test losses"):
        scores = evaluate(model, torch.from_numpy(splits.test_images).to(device), labels,
                          binarize)
    with timed.time("posterior means, active units"):
        mu, logvar = latent.posterior_means(model, splits.test_images, binarize)
        n_active, activity = latent.active_units(mu, config.active_threshold)
    with timed.time("I_q and marginal KL"):
        found = information(torch.from_numpy(mu), torch.from_numpy(logvar), seed=seed)
    best = loaded.checkpoint.state
    record: dict[str, Any] = {
        "z_dim": z_dim, "seed": seed, "run_dir": str(run_dir), "binarize": binarize,
        "epochs": len(history), "best_epoch": best.best_epoch if best else None,
        "train_seconds": float(sum(r["seconds"] for r in history)),
        "final": history[-1] if history else {}, "history": history,
        "test": scores, "information": found.to_dict(),
        "active_units": n_active, "unit_activity": activity.tolist(),
    }
    first = None
    if reference is not None:
        quality = []
        for draw in range(draws):
            with timed.time("first prior draw" if draw == 0 else "further prior draws"):
                samples = prior_images(model, config.prior_samples,
                                       seed=prior_seed(seed, draw))
                outputs = reference.classifier.outputs(samples)
                scored = feature_quality(reference.test_features, outputs.features,
                                         config.pr_k, reference.support)
            quality.append({**scored.to_dict(), "prior_seed": prior_seed(seed, draw)})
            if draw == 0:
                first = samples
                counts = latent.class_histogram(
                    latent.abstain(outputs.labels, outputs.confidence, config.min_confidence),
                    len(splits.class_names))
                record.update(prior_counts=counts.tolist(),
                              prior_unclear_share=float(counts[-1] / max(counts.sum(), 1)))
        record.update(sample_quality=quality[0], sample_draws=quality)
    return Measured(record, loaded, mu, first)
