"""What changes over a run: the shuffle of each epoch and the KL weight of each step."""

from __future__ import annotations

import math

import torch

from vaelab.config import TrainConfig

__all__ = ["epoch_permutation", "kl_weight", "steps_per_epoch"]


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The shuffle of one epoch, a pure function of (seed, epoch) so a resume can redraw it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def kl_weight(config: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """beta, ramped linearly from 0 over the first ``kl_warmup`` epochs."""
    if config.kl_warmup <= 0:
        return config.beta
    progress = (epoch + step / max(steps, 1)) / config.kl_warmup
    return config.beta * min(1.0, progress)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimisation steps of one pass; the last batch may be smaller."""
    return math.ceil(n_train / batch_size)
