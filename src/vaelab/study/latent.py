"""Measurements of a trained model's latent space: traversals, manifolds, digit maps, active units.

Every function takes the model (anything with ``decode_probs``/``encode``) and, where labels
are needed, a classifier (anything with ``predict(images) -> (labels, confidence)``), so the
digit maps can be checked on constructed decoders and classifiers whose answers are known.
Images come back as float numpy arrays (N, 28, 28) in [0, 1].

The classifier may abstain: it says "none of these" (``UNCLEAR``, -1), or a decoding counts as
class d only when the classifier gives d a probability of at least ``min_confidence``. On a
line, a class also needs ``min_run`` neighbouring grid points in a row to count as drawn; on a
plane, a connected region of ``min_region`` grid points (``drop_small_regions``).

Shares of a plane are never shares of its area: a uniform grid over [-5, 5]² gives the corners,
where the prior puts almost no mass and no image is encoded, as much weight as the centre.
``prior_cell_mass`` weighs each grid point by the prior's probability of its cell, and
``data_cell_counts`` by how many of the test images' latent means fall in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from vaelab.evaluation.classifier import UNCLEAR

__all__ = [
    "UNCLEAR",
    "Decoder",
    "Interval",
    "Labeller",
    "abstain",
    "active_units",
    "class_histogram",
    "data_cell_counts",
    "decode",
    "digit_intervals",
    "digit_map_1d",
    "digit_map_2d",
    "drop_small_regions",
    "grid_points",
    "interpolate",
    "interval_shares",
    "label_shares",
    "manifold",
    "outside_share",
    "posterior_means",
    "prior_cell_mass",
    "prior_mass_outside",
    "quantile_values",
    "weighted_shares",
]


class Decoder(Protocol):
    def decode_probs(self, z: torch.Tensor) -> torch.Tensor: ...


class Labeller(Protocol):
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


def _device(model: object) -> torch.device:
    try:
        return next(model.parameters()).device  # type: ignore[attr-defined,no-any-return]
    except (AttributeError, StopIteration):
        return torch.device("cpu")


@torch.no_grad()
def decode(model: Decoder, z: np.ndarray | torch.Tensor, batch_size: int = 2000) -> np.ndarray:
    """Mean images sigmoid(decode(z)) of latent points (N, z_dim), as (N, 28, 28)."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32))
    device = _device(model)
    out = [model.decode_probs(z[i:i + batch_size].to(device))[:, 0].float().cpu()
           for i in range(0, len(z), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 28, 28), np.float32)


@torch.no_grad()
def posterior_means(model: torch.nn.Module, images: np.ndarray, binarize: str = "none",
                    batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """E_q[z | x] and log Var_q[z | x] of uint8 images (N, 28, 28), each (N, z_dim).

    The images are the pixels the model was trained on: binarised as evaluation binarises them
    (``vaelab.pixels.evaluation_pixels``) when ``binarize`` is not "none".
    """
    from vaelab.pixels import evaluation_pixels

    device = _device(model)
    pixels = evaluation_pixels(torch.from_numpy(np.asarray(images)), binarize)
    mus, logvars = [], []
    for i in range(0, len(pixels), batch_size):
        x = pixels[i:i + batch_size].to(device)
        mu, logvar = model.encode(x)  # type: ignore[operator]
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def active_units(means: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Units whose posterior mean varies across the data (Burda, Grosse & Salakhutdinov 2015).

    Unit u is active when A_u = Cov_x(E_q[z_u | x]) > threshold; returns the count and A.
    """
    variances = np.asarray(means, dtype=np.float64).var(axis=0)
    return int((variances > threshold).sum()), variances


def abstain(labels: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """``labels`` with UNCLEAR wherever the classifier's probability is below ``min_confidence``."""
    labels = np.asarray(labels).astype(np.int64)
    return np.where(np.asarray(confidence) >= min_confidence, labels, UNCLEAR)


@dataclass
class Interval:
    """A stretch of the z axis over which the classifier sees one digit (or none: UNCLEAR)."""

    label: int  # the digit, or UNCLEAR
    start: float  # lower bound (midpoint to the previous sampled point, or the range start)
    end: float  # upper bound
    confidence: float  # mean classifier probability over the sampled points inside

    @property
    def width(self) -> float:
        return self.end - self.start


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last index of each run of equal labels."""
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1  # first index of each new run
    return np.concatenate([[0], change]), np.concatenate([change, [len(labels)]])


def digit_intervals(z: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None = None,
                    min_run: int = 1) -> list[Interval]:
    """Runs of equal labels along sorted points ``z``; bounds fall midway between points.

    A digit's run of fewer than ``min_run`` points does not count as drawn: it becomes part of
    an UNCLEAR run (neighbouring unclear runs merge).
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    conf = np.ones(len(z)) if confidence is None else np.asarray(confidence, dtype=np.float64)
    if len(z) == 0:
        return []
    if min_run > 1:
        labels = labels.copy()
        for a, b in zip(*_runs(labels), strict=True):
            if b - a < min_run:
                labels[a:b] = UNCLEAR
    starts, ends = _runs(labels)
    intervals = []
    for a, b in zip(starts, ends, strict=True):
        lo = z[0] if a == 0 else (z[a - 1] + z[a]) / 2
        hi = z[-1] if b == len(z) else (z[b - 1] + z[b]) / 2
        intervals.append(Interval(int(labels[a]), float(lo), float(hi), float(conf[a:b].mean())))
    return intervals


def interval_shares(intervals: list[Interval], n_classes: int = 10) -> np.ndarray:
    """The share of the line each digit covers, (n_classes + 1,); the last entry is UNCLEAR."""
    shares = np.zeros(n_classes + 1)
    total = sum(i.width for i in intervals)
    for part in intervals:
        shares[part.label] += part.width / total if total > 0 else 0.0  # UNCLEAR is index -1
    return shares


def label_shares(labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """The share of labels equal to each digit, (n_classes + 1,); the last entry is UNCLEAR."""
    labels = np.asarray(labels).ravel()
    counts = class_histogram(labels, n_classes)
    return np.asarray(counts / max(len(labels), 1), dtype=np.float64)


def class_histogram(labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts of each digit among ``labels``, (n_classes + 1,); the last entry counts UNCLEAR."""
    labels = np.asarray(labels).ravel()
    counts = np.bincount(labels[labels != UNCLEAR], minlength=n_classes)[:n_classes]
    return np.append(counts, int((labels == UNCLEAR).sum()))


def digit_map_1d(model: Decoder, classifier: Labeller, low: float, high: float, points: int,
                 min_confidence: float = 0.0, min_run: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Interval]]:
    """Classify decodings of ``points`` evenly spaced z in [low, high] (a 1-D model).

    Returns z, labels (UNCLEAR below ``min_confidence``), confidences and the intervals of the
    digit map (runs shorter than ``min_run`` points unclear).
    """
    z = np.linspace(low, high, points)
    images = decode(model, z[:, None])
    labels, confidence = classifier.predict(torch.from_numpy(images))
    labels = abstain(labels, confidence, min_confidence)
    return z, labels, confidence, digit_intervals(z, labels, confidence, min_run)


def grid_points(x_values: np.ndarray, y_values: np.ndarray) -> np.ndarray:
    """(len(y) * len(x), 2) points in reading order: the top row holds the largest y."""
    xs, ys = np.meshgrid(np.asarray(x_values), np.asarray(y_values)[::-1])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def quantile_values(low: float, high: float, n: int) -> np.ndarray:
    """Standard-normal quantiles of n evenly spaced probabilities in [low, high]."""
    probs = torch.linspace(low, high, n, dtype=torch.float64)
    return np.asarray(torch.special.ndtri(probs).numpy())


def manifold(model: Decoder, values: np.ndarray, y_values: np.ndarray | None = None
             ) -> np.ndarray:
    """Decodings of the grid values x y_values (default: values) of a 2-D model,
    (len(y) * len(x), 28, 28) in reading order, top row = high z2."""
    return decode(model, grid_points(values, values if y_values is None else y_values))


def digit_map_2d(model: Decoder, classifier: Labeller, values: np.ndarray,
                 min_confidence: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's digit (UNCLEAR below ``min_confidence``) and its probability at each
    grid point, each (n, n), top row = high z2."""
    images = decode(model, grid_points(values, values))
    labels, confidence = classifier.predict(torch.from_numpy(images))
    labels = abstain(labels, confidence, min_confidence)
    n = len(values)
    return labels.reshape(n, n), confidence.reshape(n, n)


def outside_share(x_values: np.ndarray, y_values: np.ndarray,
                  box: tuple[float, float, float, float]) -> float:
    """The share of the grid x_values x y_values outside ``box`` = (x_lo, x_hi, y_lo, y_hi)."""
    points = grid_points(np.asarray(x_values), np.asarray(y_values))
    x_lo, x_hi, y_lo, y_hi = box
    inside = ((points[:, 0] >= x_lo) & (points[:, 0] <= x_hi)
              & (points[:, 1] >= y_lo) & (points[:, 1] <= y_hi))
    return float(1.0 - inside.mean()) if len(points) else 0.0


@torch.no_grad()
def interpolate(model: torch.nn.Module, start: np.ndarray, end: np.ndarray,
                steps: int, binarize: str = "none") -> np.ndarray:
    """Decodings along straight lines between the posterior means of uint8 image pairs.

    ``start`` and ``end`` are (P, 28, 28); returns (P * steps, 28, 28), one pair per row.
    """
    mu_a, _ = posterior_means(model, start, binarize)
    mu_b, _ = posterior_means(model, end, binarize)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    path = mu_a[:, None, :] * (1 - t) + mu_b[:, None, :] * t  # (P, steps, z_dim)
    return decode(model, path.reshape(-1, mu_a.shape[1]))  # type: ignore[arg-type]


def drop_small_regions(labels: np.ndarray, min_region: int) -> np.ndarray:
    """A label grid (n, m) with every connected region (4-neighbour, one label) of fewer than
    ``min_region`` points set to UNCLEAR: a class on a speck of the plane is not drawn there."""
    grid = np.asarray(labels).astype(np.int64).copy()
    if min_region <= 1:
        return grid
    rows, cols = grid.shape
    seen = np.zeros(grid.shape, bool)
    for start in zip(*np.nonzero(grid != UNCLEAR), strict=True):
        if seen[start]:
            continue
        label, region, stack = grid[start], [start], [start]
        seen[start] = True
        while stack:
            r, c = stack.pop()
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nr < rows and 0 <= nc < cols and not seen[nr, nc] \
                        and grid[nr, nc] == label:
                    seen[nr, nc] = True
                    region.append((nr, nc))
                    stack.append((nr, nc))
        if len(region) < min_region:
            for point in region:
                grid[point] = UNCLEAR
    return grid


def _cell_edges(values: np.ndarray) -> np.ndarray:
    """Edges of the cells around sorted grid values: midpoints, the outer two at -inf and inf,
    so the cells cover the whole line."""
    values = np.asarray(values, dtype=np.float64)
    return np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return np.asarray(torch.special.ndtr(torch.from_numpy(np.asarray(x, np.float64))).numpy())


def prior_cell_mass(values: np.ndarray) -> np.ndarray:
    """N(0, I)'s probability of each grid point's cell (n, n), in the reading order of
    ``grid_points`` (top row = high z2); the outer cells reach to infinity, so the masses
    sum to 1."""
    mass = np.diff(_normal_cdf(_cell_edges(values)))
    return np.outer(mass[::-1], mass)  # rows: z2 from high to low; columns: z1


def data_cell_counts(values: np.ndarray, means: np.ndarray) -> np.ndarray:
    """How many latent means (N, 2) fall in each grid point's cell (n, n), reading order."""
    edges = _cell_edges(values)
    n = len(values)
    col = np.clip(np.searchsorted(edges, means[:, 0], side="right") - 1, 0, n - 1)
    row = np.clip(np.searchsorted(edges, means[:, 1], side="right") - 1, 0, n - 1)
    counts = np.zeros((n, n))
    np.add.at(counts, (n - 1 - row, col), 1)
    return counts


def weighted_shares(labels: np.ndarray, weights: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """The share of the total weight on each class, (n_classes + 1,); the last is UNCLEAR."""
    labels, weights = np.asarray(labels).ravel(), np.asarray(weights, np.float64).ravel()
    index = np.where(labels == UNCLEAR, n_classes, labels)
    totals = np.bincount(index, weights=weights, minlength=n_classes + 1)
    return np.asarray(totals / max(weights.sum(), 1e-300), dtype=np.float64)


def prior_mass_outside(box: tuple[float, float, float, float]) -> float:
    """N(0, I)'s probability outside the box (x_lo, x_hi, y_lo, y_hi)."""
    x_lo, x_hi, y_lo, y_hi = box
    cdf = _normal_cdf(np.array([x_lo, x_hi, y_lo, y_hi]))
    return float(1.0 - (cdf[1] - cdf[0]) * (cdf[3] - cdf[2]))
