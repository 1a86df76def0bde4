"""The pictures of a run: reconstructions, prior samples and loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import TrainConfig
from vaelab.models import VAE
from vaelab.models.base import eval_mode
from vaelab.pictures.png import save_grid
from vaelab.pixels import binarize_once

__all__ = [
    "prior_samples",
    "reconstruction_pairs",
    "save_reconstructions",
    "save_samples",
    "write_run_figures",
]


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


def save_reconstructions(
    path: Path,
    model: VAE,
    images: torch.Tensor,
    binarize: str = "none",
    labels: torch.Tensor | None = None,
    ncol: int = 10,
) -> None:
    """Rows of originals, each directly above the row of its reconstructions."""
    originals, recons = reconstruction_pairs(model, images, binarize, labels)
    n_rows = -(-len(originals) // ncol)
    tiles = []
    for r in range(n_rows):
        row = slice(r * ncol, (r + 1) * ncol)
        pad = ncol - len(originals[row])
        blank = np.zeros((pad, *originals.shape[1:]), np.float32)
        tiles += [np.concatenate([originals[row], blank]), np.concatenate([recons[row], blank])]
    save_grid(path, np.concatenate(tiles), ncol=ncol)


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


def save_samples(path: Path, model: VAE, n: int = 100, seed: int = 0) -> None:
    images = prior_samples(model, n, seed)
    save_grid(path, images, ncol=int(np.ceil(np.sqrt(n))))


def write_run_figures(
    run_dir: Path, model: VAE, data: dict[str, torch.Tensor], config: TrainConfig
) -> None:
    """reconstructions.png, samples.png and loss_curves.png in the run directory."""
    from vaelab.pictures.plots import plot_loss_curves
    from vaelab.training.loop import METRICS

    source = "val" if len(data["val_images"]) else "test"
    images, labels = data[f"{source}_images"][:100], data[f"{source}_labels"][:100]
    save_reconstructions(run_dir / "reconstructions.png", model, images, config.binarize, labels)
    save_samples(run_dir / "samples.png", model, seed=config.seed)
    history = _read_history(run_dir / METRICS)
    if history:
        title = f"{config.model}, z_dim={config.z_dim}, {config.dataset}"
        plot_loss_curves({f"z={config.z_dim}": history}, run_dir / "loss_curves.png", title=title)


def _read_history(path: Path) -> list[dict[str, Any]]:
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
