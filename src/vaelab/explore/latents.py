"""What the explorer's map and sliders show: the test set's latent means, their 2-D map, ranges.

The map is the first two latent dimensions when z_dim = 2, the latent value against the label
when z_dim = 1 (one row when the data has no labels), and otherwise the plane of the two
principal components of the latent means (the basis and mean go into the page, so every map
point maps back to a latent vector ``z = mean + coords @ basis``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vaelab.models import VAE

__all__ = ["MAP_PADDING", "PRIOR_SIGMAS", "LatentSummary", "latent_means", "map_extent",
           "pca_plane", "summarise_latents"]

PRIOR_SIGMAS = 3.0  # the sliders mark the prior N(0, 1) at ± this many standard deviations
MANIFOLD_LIMIT = 5.0  # the decoded manifold spans [-5, 5] in each latent dimension (z_dim ≤ 2)
MAP_PADDING = 0.05  # the map shows this share of its points' range beyond them on each side


def latent_means(model: VAE, images_u8: np.ndarray, binarize: str = "none",
                 batch_size: int = 500) -> np.ndarray:
    """Posterior means mu (N, z_dim) of uint8 images (N, 28, 28), computed in batches."""
    import torch

    from vaelab.models.base import eval_mode
    from vaelab.pixels import binarize_once

    device = next(model.parameters()).device
    pixels = binarize_once(torch.from_numpy(images_u8), binarize)
    chunks = []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(pixels), batch_size):
            mu, _ = model.encode(pixels[start:start + batch_size].to(device))
            chunks.append(mu.cpu().numpy())
    return np.concatenate(chunks).astype(np.float64)


def pca_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (d,), the top-two principal directions (2, d) and their variance ratios (2,)."""
    mean = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - mean, full_matrices=False)
    # A sign convention so the picture does not flip between identical runs.
    signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())
    basis = vt[:2] * np.where(signs == 0, 1.0, signs)[:, None]
    variance = singular**2
    return mean, basis, variance[:2] / variance.sum()


@dataclass
class LatentSummary:
    """Everything the page shows about the latent space, as plain arrays."""

    means: np.ndarray  # (n, z_dim) latent means of the test images drawn on the map
    labels: np.ndarray  # (n,) their labels (all 0 for unlabelled data)
    map_kind: str  # "dims" (z_dim 2), "strip" (z_dim 1: value against label) or "pca"
    map_coords: np.ndarray  # (n, 2) position of each point on the map
    map_mean: np.ndarray  # (z_dim,) latent vector at the map's origin
    map_basis: np.ndarray  # (2, z_dim) map axes in latent space: z = mean + coords @ basis
    explained: list[float]  # variance ratio of each PCA axis (empty for the other kinds)
    map_extent: tuple[float, float, float, float]  # x0, x1, y0, y1 of the map, map coordinates
    slider_low: np.ndarray  # (z_dim,) slider ends: the data's range joined with the prior's ±3σ
    slider_high: np.ndarray
    data_low: np.ndarray  # (z_dim,) 1st and 99th percentiles of the means over the test set
    data_high: np.ndarray
    labelled: bool = True  # whether the points have labels (else they are drawn in one colour)

    def to_json(self) -> dict[str, Any]:
        """Small arrays as lists; the caller encodes ``means`` and ``labels`` compactly."""
        return {
            "n": len(self.labels), "map_kind": self.map_kind, "labelled": self.labelled,
            "map_mean": _rounded(self.map_mean), "map_basis": _rounded(self.map_basis),
            "map_extent": [float(v) for v in self.map_extent],
            "explained": [round(v, 4) for v in self.explained],
            "slider_low": _rounded(self.slider_low), "slider_high": _rounded(self.slider_high),
            "data_low": _rounded(self.data_low), "data_high": _rounded(self.data_high),
            "prior_sigmas": PRIOR_SIGMAS,
            "manifold_limit": MANIFOLD_LIMIT if self.map_kind != "pca" else None,
        }


def _rounded(array: np.ndarray) -> Any:
    return np.round(np.asarray(array, np.float64), 5).tolist()


def map_extent(coords: np.ndarray, kind: str) -> tuple[float, float, float, float]:
    """The map's x0, x1, y0, y1: its points with some padding, and where the decoded manifold
    is shown (z_dim 1 and 2) at least [-5, 5]. A strip map's rows are labels (y is the page's)."""
    x0, y0 = coords.min(axis=0)
    x1, y1 = coords.max(axis=0)
    pad_x = MAP_PADDING * (x1 - x0 or 1.0)
    pad_y = MAP_PADDING * (y1 - y0 or 1.0)
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    if kind != "pca":
        x0, x1 = min(x0, -MANIFOLD_LIMIT), max(x1, MANIFOLD_LIMIT)
    if kind == "dims":
        y0, y1 = min(y0, -MANIFOLD_LIMIT), max(y1, MANIFOLD_LIMIT)
    return float(x0), float(x1), float(y0), float(y1)


def summarise_latents(all_means: np.ndarray, labels: np.ndarray | None,
                      n_points: int) -> LatentSummary:
    """Map and slider ranges from every test mean; the first ``n_points`` go on the map.

    ``labels`` None: unlabelled data, every point in one row (z_dim 1) and one colour.
    """
    z_dim = all_means.shape[1]
    shown = all_means[:n_points]
    shown_labels = np.zeros(len(shown), np.int64) if labels is None else labels[:n_points]
    explained: list[float] = []
    if z_dim == 1:
        kind, mean, basis = "strip", np.zeros(1), np.array([[1.0], [0.0]])
        coords = np.stack([shown[:, 0], shown_labels.astype(np.float64)], axis=1)
    elif z_dim == 2:
        kind, mean, basis = "dims", np.zeros(2), np.eye(2)
        coords = shown.copy()
    else:
        kind = "pca"
        mean, basis, ratios = pca_plane(all_means)
        coords = (shown - mean) @ basis.T
        explained = [float(r) for r in ratios]
    data_low, data_high = np.percentile(all_means, [1, 99], axis=0)
    low = np.floor(np.minimum(all_means.min(axis=0), -PRIOR_SIGMAS) * 10) / 10
    high = np.ceil(np.maximum(all_means.max(axis=0), PRIOR_SIGMAS) * 10) / 10
    return LatentSummary(shown, shown_labels, kind, coords, mean, basis, explained,
                         map_extent(coords, kind), low, high, data_low, data_high,
                         labelled=labels is not None)
