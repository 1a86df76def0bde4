"""The 1-D line and the 2-D plane of the small models: their figures and their numbers.

The z_dim = 1 model is decoded along a line, the z_dim = 2 model over a plane; the classifier
labels each decoding (``vaelab.study.latent``). Each function draws its figures into the study's
figure folder, records what the legibility check found, and returns the numbers results.json
keeps. Every share of the plane is weighted by the prior's mass and, separately, by where the
test set's latent means fall; never by the plane's area. Each result names the grid it comes
from: the manifolds are ``grid_size`` x ``grid_size`` images, the class map is ``MAP_2D_POINTS``
points a side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.evaluation.classifier import Classifier
from vaelab.pictures.plots import Legibility
from vaelab.study import figures, latent
from vaelab.study.config import StudyConfig

__all__ = ["MAP_2D_POINTS", "MIN_REGION", "MIN_RUN", "one_d", "two_d"]

MAP_2D_POINTS = 121  # grid points per axis of the 2-D class map (odd: z = 0 is on it)
MIN_RUN = 2  # neighbouring grid points a class needs on the 1-D line to count as drawn
# The 2-D counterpart of MIN_RUN: a connected region of MIN_RUN x MIN_RUN grid points.
MIN_REGION = MIN_RUN * MIN_RUN

Check = Callable[[Legibility], dict[str, Any]]


def one_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray,
          classifier: Classifier, names: list[str], noun: str, fig_dir: Path,
          checks: dict[str, dict[str, Any]], check: Check) -> dict[str, Any]:
    """The line of the z_dim = 1 model over the prior's range and over the test set's."""
    data_range = (float(means[:, 0].min()), float(means[:, 0].max()))
    ranges = {"prior range": config.traverse_range, "data range": data_range}
    strips, out = [], {}
    for title, (low, high) in ranges.items():
        z_show = np.linspace(low, high, config.traverse_images)
        images = latent.decode(model, z_show[:, None])  # type: ignore[arg-type]
        labels, confidence = classifier.predict(torch.from_numpy(images))
        labels = latent.abstain(labels, confidence, config.min_confidence)
        _, _, _, intervals = latent.digit_map_1d(
            model, classifier, low, high, config.map_points,  # type: ignore[arg-type]
            config.min_confidence, MIN_RUN)
        shares = latent.interval_shares(intervals, len(names))
        strips.append((f"{title}: z in [{low:.2f}, {high:.2f}]", z_show, images, labels,
                       intervals))
        out[title] = {"low": low, "high": high, "strip_labels": labels.tolist(),
                      "intervals": [asdict(i) for i in intervals],
                      "digits": sorted({i.label for i in intervals if i.label != latent.UNCLEAR}),
                      "shares": shares.tolist(), "unclear_share": float(shares[-1])}
    checks["strip_1d.png"] = check(figures.plot_strip_1d(fig_dir / "strip_1d.png", strips,
                                                         names, noun))
    return {"min_confidence": config.min_confidence, "min_run": MIN_RUN,
            "map_points": config.map_points, **out}


def _manifolds(config: StudyConfig, model: torch.nn.Module,
               box: tuple[float, float, float, float],
               fig_dir: Path, checks: dict[str, dict[str, Any]], check: Check) -> None:
    limit, n = config.grid_range, config.grid_size
    values = np.linspace(-limit, limit, n)
    checks["manifold_2d.png"] = check(figures.plot_manifold(
        fig_dir / "manifold_2d.png", latent.manifold(model, values),  # type: ignore[arg-type]
        values, values, f"decoded z on a {n} x {n} grid over [-{limit:g}, {limit:g}]²; "
        "dashed: the test set's latent range", box=box))
    xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
    checks["manifold_data_2d.png"] = check(figures.plot_manifold(
        fig_dir / "manifold_data_2d.png", latent.manifold(model, xs, ys),  # type: ignore[arg-type]
        xs, ys, f"decoded z on a {n} x {n} grid over the test set's latent range"))
    q_lo, q_hi = config.quantiles
    probs = np.linspace(q_lo, q_hi, n)
    # Round probabilities as ticks, inner ones only where they keep clear of the ends.
    tick_probs = [q_lo, *(p for p in (0.25, 0.5, 0.75) if q_lo + 0.1 <= p <= q_hi - 0.1), q_hi]
    tick_z = [float(latent.quantile_values(p, p, 1)[0]) for p in tick_probs]
    checks["manifold_quantiles.png"] = check(figures.plot_manifold(
        fig_dir / "manifold_quantiles.png",
        latent.manifold(model, latent.quantile_values(q_lo, q_hi, n)),  # type: ignore[arg-type]
        probs, probs, f"decoded z at the prior's quantiles {q_lo:g} to {q_hi:g}, {n} x {n}",
        ticks=(tick_probs, [f"{p:g}\n(z {z:+.2f})" for p, z in zip(tick_probs, tick_z,
                                                                   strict=True)]),
        labels=("prior quantile of z1", "prior quantile of z2")))


def two_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray,
          labels: np.ndarray | None, classifier: Classifier | None, names: list[str],
          noun: str, fig_dir: Path, checks: dict[str, dict[str, Any]],
          check: Check) -> dict[str, Any]:
    """The plane of the z_dim = 2 model: three manifolds, and with a classifier its class map
    and the shares of each class by prior mass and by the test set's latent means."""
    box = (float(means[:, 0].min()), float(means[:, 0].max()),
           float(means[:, 1].min()), float(means[:, 1].max()))
    _manifolds(config, model, box, fig_dir, checks, check)
    limit = config.grid_range
    out: dict[str, Any] = {"limit": limit, "grid_size": config.grid_size,
                           "latent_extent": list(box),
                           "beyond_prior_mass": latent.prior_mass_outside(box)}
    if classifier is None:
        return out
    values = np.linspace(-limit, limit, MAP_2D_POINTS)
    raw, _ = latent.digit_map_2d(model, classifier, values,  # type: ignore[arg-type]
                                 config.min_confidence)
    grid = latent.drop_small_regions(raw, MIN_REGION)
    checks["digit_map_2d.png"] = check(figures.plot_digit_map_2d(
        fig_dir / "digit_map_2d.png", grid, limit, means, labels, names, box, noun))
    by_prior = latent.weighted_shares(grid, latent.prior_cell_mass(values), len(names))
    by_data = latent.weighted_shares(grid, latent.data_cell_counts(values, means), len(names))
    points = latent.grid_points(values, values)
    inside = ((points[:, 0] >= box[0]) & (points[:, 0] <= box[1])
              & (points[:, 1] >= box[2]) & (points[:, 1] <= box[3]))
    unclear = grid.ravel() == latent.UNCLEAR
    drawn = sorted({int(d) for d in np.unique(grid) if d != latent.UNCLEAR})
    return {**out, "map_points": MAP_2D_POINTS, "min_region": MIN_REGION,
            "min_confidence": config.min_confidence,
            "prior_share": by_prior[:-1].tolist(), "prior_unclear": float(by_prior[-1]),
            "data_share": by_data[:-1].tolist(), "data_unclear": float(by_data[-1]),
            "digits": drawn,
            "beyond_share": float(1.0 - inside.mean()),
            "unclear_inside": float(unclear[inside].mean()) if inside.any() else None,
            "unclear_outside": float(unclear[~inside].mean()) if (~inside).any() else None}
