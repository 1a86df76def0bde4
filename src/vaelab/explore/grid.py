"""Decodings precomputed on a grid over the map: the explorer for a decoder the page cannot run.

When ``export_decoder`` refuses a decoder (a layer the page has no JavaScript for, a branching
network), PyTorch decodes the centre of every cell of a grid over the map instead: 32 × 32
cells for a 2-D map (the latent plane for z_dim 2, the principal plane of the latent means
beyond), 128 along the z axis for z_dim 1. The page shows the decoding of the cell nearest to
any point, so it stays one self-contained file; it says that it does so.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.explore.latents import LatentSummary

if TYPE_CHECKING:
    from vaelab.models import VAE

__all__ = ["GRID_STEPS", "STRIP_STEPS", "GridDecodings", "decode_grid", "grid_latents"]

GRID_STEPS = 32  # cells along each axis of a 2-D map
STRIP_STEPS = 128  # cells along the z axis of a z_dim 1 map (its rows are labels, not latents)


@dataclass
class GridDecodings:
    """Decoded mean images at the cell centres, row by row from the top of the map."""

    steps: tuple[int, int]  # cells across (x) and down (y)
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1 the grid covers
    images: np.ndarray  # (rows * columns, n_pixels) uint8: round(255 * probability)
    max_abs_error: float  # largest difference of the stored pixels from PyTorch's, at the centres

    def to_json(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "extent": list(self.extent),
                "images": base64.b64encode(np.ascontiguousarray(self.images).tobytes())
                .decode("ascii")}


def grid_latents(summary: LatentSummary, steps: tuple[int, int]) -> np.ndarray:
    """The latent vector (rows * columns, z_dim) at every cell centre, top row first."""
    columns, rows = steps
    x0, x1, y0, y1 = summary.map_extent
    xs = x0 + (x1 - x0) * (np.arange(columns) + 0.5) / columns
    if summary.map_kind == "strip":
        return xs[:, None].astype(np.float64)
    ys = y1 - (y1 - y0) * (np.arange(rows) + 0.5) / rows  # the top row is the largest y
    coords = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    latents: np.ndarray = summary.map_mean + coords @ summary.map_basis
    return latents


def decode_grid(model: VAE, summary: LatentSummary, batch_size: int = 256) -> GridDecodings:
    """Decode every cell centre of the map with PyTorch."""
    import torch

    from vaelab.models.base import eval_mode

    steps = (STRIP_STEPS, 1) if summary.map_kind == "strip" else (GRID_STEPS, GRID_STEPS)
    z = torch.from_numpy(grid_latents(summary, steps)).float()
    device = next(model.parameters()).device
    chunks = []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(z), batch_size):
            probs = model.decode_probs(z[start:start + batch_size].to(device))
            chunks.append(probs.float().flatten(1).cpu().numpy())
    probs_all = np.concatenate(chunks).astype(np.float64)
    stored = np.rint(probs_all * 255).astype(np.uint8)
    error = float(np.abs(stored / 255.0 - probs_all).max())
    return GridDecodings(steps, summary.map_extent, stored, error)
