"""The pictures of a run: reconstructions, prior samples and loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import TrainConfig
from vaelab.data.datasets import display_name
from vaelab.models import VAE
from vaelab.models.base import eval_mode
from vaelab.pictures.png import make_grid, save_png
from vaelab.pixels import binarize_once
from vaelab.runs.layout import LOSS_CURVES, RECONSTRUCTIONS, SAMPLES, RunDir

__all__ = [
    "GRID_SCALE",
    "prior_samples",
    "reconstruction_grid",
    "reconstruction_pairs",
    "sample_grid",
    "save_reconstructions",
    "save_samples",
    "write_run_figures",
]

GRID_SCALE = 2  # each pixel drawn as a 2 x 2 block, so a 28-pixel digit is legible


@torch.no_grad()
def reconstruction_pairs(
    model: VAE, images: torch.Tensor, binarize: str = "none", labels: torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Originals and their reconstructions (decoded posterior means), each (N, 28, 28) in [0, 1]."""
    x = binarize_once(images, binarize)
    with eval_mode(model):
        mu, _ = model.encode(x, labels)
        recon = model.decode_probs(mu, labels)
    return x[:, 0].cpu().numpy(), recon[:, 0].float().cpu().numpy()


def reconstruction_grid(
    model: VAE,
    images: torch.Tensor,
    binarize: str = "none",
    labels: torch.Tensor | None = None,
    ncol: int = 10,
) -> np.ndarray:
    """uint8 picture: rows of originals, each directly above the row of its reconstructions."""
    originals, recons = reconstruction_pairs(model, images, binarize, labels)
    n_rows = -(-len(originals) // ncol)
    tiles = []
    for r in range(n_rows):
        row = slice(r * ncol, (r + 1) * ncol)
        pad = ncol - len(originals[row])
        blank = np.zeros((pad, *originals.shape[1:]), np.float32)
        tiles += [np.concatenate([originals[row], blank]), np.concatenate([recons[row], blank])]
    return make_grid(np.concatenate(tiles), ncol=ncol, scale=GRID_SCALE)


def save_reconstructions(
    path: Path,
    model: VAE,
    images: torch.Tensor,
    binarize: str = "none",
    labels: torch.Tensor | None = None,
    ncol: int = 10,
) -> None:
    """``reconstruction_grid`` as a PNG."""
    save_png(path, reconstruction_grid(model, images, binarize, labels, ncol))


@torch.no_grad()
def prior_samples(
    model: VAE, n: int, seed: int = 0, labels: torch.Tensor | None = None
) -> np.ndarray:
    """Mean images decoded from prior draws, (n, 28, 28) in [0, 1].

    A conditional model draws ``labels`` (default: the classes in turn); the others ignore them.
    """
    device = next(model.parameters()).device
    z = model.sample_prior(n, torch.Generator().manual_seed(seed))
    y = labels if labels is not None else torch.arange(n, device=device) % model.config.num_classes
    with eval_mode(model):
        probs = model.decode_probs(z, y)
    return probs[:, 0].float().cpu().numpy()


def sample_grid(model: VAE, n: int = 100, seed: int = 0) -> np.ndarray:
    """uint8 picture: ``n`` decoded prior draws in a square grid."""
    images = prior_samples(model, n, seed)
    return make_grid(images, ncol=int(np.ceil(np.sqrt(n))), scale=GRID_SCALE)


def save_samples(path: Path, model: VAE, n: int = 100, seed: int = 0) -> None:
    save_png(path, sample_grid(model, n, seed))


def write_run_figures(run: RunDir, model: VAE, images: torch.Tensor,
                      labels: torch.Tensor | None, history: Sequence[dict[str, Any]],
                      config: TrainConfig) -> None:
    """reconstructions.png, samples.png and loss_curves.png of a run (the curves drawn from
    ``history``, its epoch records)."""
    from vaelab.pictures.plots import plot_loss_curves

    save_reconstructions(run.picture(RECONSTRUCTIONS), model, images, config.binarize, labels)
    save_samples(run.picture(SAMPLES), model, seed=config.seed)
    if history:
        title = f"{config.model}, z_dim={config.z_dim}, {display_name(config.dataset)}"
        plot_loss_curves({f"z={config.z_dim}": history}, run.picture(LOSS_CURVES), title=title)
