"""One pass over the training set, for any ``Step``: one model, a stack, or one rank of many.

The data live on the training device as uint8 tensors; each step's batch is a slice of a
seeded permutation (one per data seed), and no per-sample Python runs in the loop. What varies
between a single model, a stack of models and a torchrun rank is only the ``Step``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from vaelab.config import TrainConfig
from vaelab.models import VAE
from vaelab.training.schedule import epoch_permutation, kl_weight, steps_per_epoch

__all__ = ["Step", "accumulator", "train_epoch"]


class Step(Protocol):
    """One optimisation step of the M members of a run, and each member seen on its own.

    ``configs`` holds one config per member (they share batch size, epochs and data);
    ``seeds`` the data seeds whose permutations give the G rows of ``index``.
    """

    @property
    def configs(self) -> Sequence[TrainConfig]: ...
    @property
    def seeds(self) -> Sequence[int]: ...
    @property
    def n_train(self) -> int: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The one optimizer of all members (its learning rate is theirs)."""
        ...

    def __call__(self, index: torch.Tensor, kl_weights: Sequence[float]) -> torch.Tensor:
        """Train on images[index] (index (G, B)); the batch sums (M, 3): loss, recon, kl."""
        ...

    def member_model(self, member: int) -> VAE:
        """The member's model with its current weights."""
        ...

    def member_optimizer(self, member: int) -> torch.optim.Optimizer:
        """An optimizer of the member's model holding its current state."""
        ...

    def member_rng(self, member: int) -> dict[str, torch.Tensor]:
        """The random state the member's checkpoint records."""
        ...


def accumulator(members: int, device: torch.device) -> torch.Tensor:
    """Zeroed epoch sums (members, 3); float64 keeps them exact enough (MPS has none)."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.zeros(members, 3, dtype=dtype, device=device)


def train_epoch(
    step: Step,
    epoch: int,
    start_step: int = 0,
    running: torch.Tensor | None = None,
    on_step: Callable[[int, torch.Tensor], bool] | None = None,
) -> tuple[torch.Tensor, int]:
    """Run one epoch's steps from ``start_step``; returns the sums (M, 3) and the steps done.

    ``on_step(steps_done, sums)`` is called after every step; it returns True to stop early.
    """
    configs = step.configs
    batch = configs[0].batch_size
    steps = steps_per_epoch(step.n_train, batch)
    orders = torch.stack([epoch_permutation(step.n_train, seed, epoch, step.device)
                          for seed in step.seeds])
    sums = running if running is not None else accumulator(len(configs), step.device)
    for i in range(start_step, steps):
        index = orders[:, i * batch:(i + 1) * batch]
        sums += step(index, [kl_weight(c, epoch, i, steps) for c in configs])
        if on_step is not None and on_step(i + 1, sums):
            return sums, i + 1
    return sums, steps
