"""Measure every model of a study from its checkpoints: numbers to results.json, figures to PNG.

Nothing here trains. The classifier is the one saved in the study directory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.data import load_splits
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import Classifier
from vaelab.pictures.png import save_grid
from vaelab.runs.atomic import atomic_write_json
from vaelab.runs.checkpoint import LoadedRun, load_run
from vaelab.study import figures, latent
from vaelab.study.config import StudyConfig
from vaelab.study.elbow import elbow

__all__ = ["FIGURES_DIR", "RESULTS", "analyze", "figure_names"]

log = logging.getLogger(__name__)

FIGURES_DIR = "figures"
RESULTS = "results.json"
N_RECON = 16  # validation digits in the reconstruction comparison
INTERP_STEPS = 10  # images per interpolation row
# Interpolation rows: from the first test image of digit a to the first of digit b.
INTERP_PAIRS = ((0, 6), (1, 7), (2, 5), (3, 8), (4, 9), (7, 1), (8, 3), (9, 4))
MAP_2D_POINTS = 121  # grid points per axis of the 2-D digit map


def figure_names(z_dims: tuple[int, ...]) -> list[str]:
    """Every figure a study over ``z_dims`` writes into STUDY_DIR/figures."""
    names = ["loss_curves.png", "reconstructions.png", "recon_error.png", "prior_classes.png",
             "active_units.png"]
    for z_dim in z_dims:
        names += [f"samples_z{z_dim}.png", f"interpolations_z{z_dim}.png"]
    if 1 in z_dims:
        names.append("strip_1d.png")
    if 2 in z_dims:
        names += ["manifold_2d.png", "manifold_quantiles.png", "scatter_2d.png",
                  "digit_map_2d.png"]
    return names


def _history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _load(config: StudyConfig, z_dim: int, device: torch.device) -> LoadedRun:
    loaded = load_run(config.run_dir(z_dim), which="best", device=device)
    if loaded.model.conditional:
        raise VaelabError(f"{config.run_dir(z_dim)} holds a conditional model; the study "
                          "needs an unconditional one")
    return loaded


def _first_of(labels: np.ndarray, digit: int) -> int:
    found = np.flatnonzero(labels == digit)
    return int(found[0]) if len(found) else 0


def analyze(config: StudyConfig, classifier: Classifier, device: torch.device,
            notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure each z_dim's best checkpoint; write the figures and results.json."""
    from vaelab.evaluation.elbo import evaluate
    from vaelab.pictures.plots import plot_loss_curves
    from vaelab.pictures.run_figures import reconstruction_pairs

    say = notify or (lambda message: None)
    study_dir = Path(config.out)
    fig_dir = study_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    splits = load_splits(config.train.dataset, config.train.data_dir)
    names = splits.class_names
    test_x = torch.from_numpy(splits.test_images).to(device)
    test_y = torch.from_numpy(splits.test_labels).long().to(device)
    starts = [_first_of(splits.test_labels, a) for a, _ in INTERP_PAIRS]
    ends = [_first_of(splits.test_labels, b) for _, b in INTERP_PAIRS]

    runs: dict[str, dict[str, Any]] = {}
    histories, recons, variances, counts, confidence = {}, {}, {}, {}, {}
    means: dict[int, np.ndarray] = {}
    models = {}
    originals = None
    for z_dim in config.z_dims:
        say(f"measuring z_dim={z_dim}")
        loaded = _load(config, z_dim, device)
        model, run_dir = loaded.model, config.run_dir(z_dim)
        models[z_dim] = model
        history = _history(run_dir)
        histories[f"z={z_dim}"] = history
        scores = evaluate(model, test_x, test_y, loaded.config.binarize)
        mu, _ = latent.posterior_means(model, splits.test_images)
        means[z_dim] = mu
        n_active, variances[z_dim] = latent.active_units(mu, config.active_threshold)
        counts[z_dim], confidence[z_dim], samples = latent.prior_class_histogram(
            model, classifier, config.prior_samples, seed=config.train.seed)
        save_grid(fig_dir / f"samples_z{z_dim}.png", samples[:100], ncol=10)
        rows = latent.interpolate(model, splits.test_images[starts], splits.test_images[ends],
                                  INTERP_STEPS)
        save_grid(fig_dir / f"interpolations_z{z_dim}.png", rows, ncol=INTERP_STEPS)
        originals, recons[f"z_dim={z_dim}"] = reconstruction_pairs(
            model, torch.from_numpy(splits.val_images[:N_RECON]).to(device), loaded.config.binarize)
        best = loaded.checkpoint.state
        runs[str(z_dim)] = {
            "z_dim": z_dim,
            "run_dir": str(run_dir),
            "epochs": len(history),
            "best_epoch": best.best_epoch if best else None,
            "train_seconds": float(sum(r["seconds"] for r in history)),
            "final": history[-1] if history else {},
            "test": scores,
            "active_units": n_active,
            "unit_activity": variances[z_dim].tolist(),
            "prior_counts": counts[z_dim].tolist(),
            "prior_confidence": confidence[z_dim],
            "prior_digits_seen": int((counts[z_dim] > 0).sum()),
        }

    say("drawing the sweep figures")
    z_dims = list(config.z_dims)
    train = config.train
    plot_loss_curves(histories, fig_dir / "loss_curves.png",
                     title=f"{train.model} on {train.dataset}: train dashed, validation solid")
    assert originals is not None
    figures.plot_reconstructions(fig_dir / "reconstructions.png", originals, recons)
    measures = {"test reconstruction BCE (nats/image)":
                [runs[str(z)]["test"]["recon_bce"] for z in z_dims],
                "test pixel MSE": [runs[str(z)]["test"]["mse"] for z in z_dims]}
    elbows = {name: elbow(z_dims, values, config.elbow_tolerances[1])
              for name, values in measures.items()}
    figures.plot_recon_error(fig_dir / "recon_error.png", z_dims, measures, elbows)
    figures.plot_prior_classes(fig_dir / "prior_classes.png", z_dims, counts, confidence, names)
    figures.plot_active_units(fig_dir / "active_units.png", variances, config.active_threshold)

    from vaelab.models import model_registry

    results: dict[str, Any] = {
        "config": config.to_dict(),
        "model_summary": model_registry.get(config.train.model).summary,
        "classifier": asdict(classifier.info),
        "class_names": list(names),
        "n_test": len(splits.test_images),
        "runs": runs,
        "elbow": {"bce": elbows["test reconstruction BCE (nats/image)"],
                  "mse": elbows["test pixel MSE"], "tolerance": config.elbow_tolerances[1]},
    }
    if 1 in models:
        say("mapping the 1-D latent line")
        results["one_d"] = _one_d(config, models[1], means[1], classifier, fig_dir)
    if 2 in models:
        say("mapping the 2-D latent plane")
        results["two_d"] = _two_d(config, models[2], means[2], splits.test_labels, classifier,
                                  names, fig_dir)
    results["figures"] = figure_names(config.z_dims)
    atomic_write_json(study_dir / RESULTS, results)
    return results


def _one_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray,
           classifier: Classifier, fig_dir: Path) -> dict[str, Any]:
    data_range = (float(means[:, 0].min()), float(means[:, 0].max()))
    ranges = {"prior range": config.traverse_range, "data range": data_range}
    strips, out = [], {}
    for title, (low, high) in ranges.items():
        z_show = np.linspace(low, high, config.traverse_images)
        images = latent.decode(model, z_show[:, None])  # type: ignore[arg-type]
        labels, _ = classifier.predict(torch.from_numpy(images))
        _, _, _, intervals = latent.digit_map_1d(model, classifier, low, high,  # type: ignore[arg-type]
                                                 config.map_points)
        label = f"{title} [{low:.2f}, {high:.2f}]"
        strips.append((label, z_show, images, labels, intervals))
        out[title] = {"low": low, "high": high, "strip_labels": labels.tolist(),
                      "intervals": [asdict(i) for i in intervals],
                      "digits": sorted({i.label for i in intervals})}
    figures.plot_strip_1d(fig_dir / "strip_1d.png", strips)
    return out


def _two_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray, labels: np.ndarray,
           classifier: Classifier, names: tuple[str, ...], fig_dir: Path) -> dict[str, Any]:
    limit, n = config.grid_range, config.grid_size
    values = np.linspace(-limit, limit, n)
    figures.plot_manifold(fig_dir / "manifold_2d.png", latent.manifold(model, values),  # type: ignore[arg-type]
                          values, f"decoded z over [-{limit:g}, {limit:g}]², {n} x {n}")
    q_lo, q_hi = config.quantiles
    q_values = latent.quantile_values(q_lo, q_hi, n)
    figures.plot_manifold(fig_dir / "manifold_quantiles.png",
                          latent.manifold(model, q_values), q_values,  # type: ignore[arg-type]
                          f"decoded z at prior quantiles {q_lo:g}–{q_hi:g}, {n} x {n}")
    figures.plot_scatter(fig_dir / "scatter_2d.png", means, labels, names)
    map_values = np.linspace(-limit, limit, MAP_2D_POINTS)
    digit_grid, confidence = latent.digit_map_2d(model, classifier, map_values)  # type: ignore[arg-type]
    figures.plot_digit_map_2d(fig_dir / "digit_map_2d.png", digit_grid, confidence, limit, names)
    share = np.bincount(digit_grid.ravel(), minlength=len(names)) / digit_grid.size
    return {"limit": limit, "grid_size": n, "map_points": MAP_2D_POINTS,
            "area_share": share.tolist(), "digits": [int(d) for d in np.flatnonzero(share)],
            "mean_confidence": float(confidence.mean()),
            "latent_extent": [float(means[:, 0].min()), float(means[:, 0].max()),
                              float(means[:, 1].min()), float(means[:, 1].max())]}
