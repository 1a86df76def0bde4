"""benchmarks/bench_bound.py: it records every product and Adam kernel of a real step."""

from __future__ import annotations

import torch

import bench_bound
from bench_train import FLOP_PER_IMAGE
from profile_step import single


def _images(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, 10, (n,), generator=generator)


def test_the_mlp_step_records_the_floors_flop_and_one_adam() -> None:
    """The recorded products are the step's whole matrix work: the FLOP bench_train's floor
    counts (no gradient of the pixels), and Adam is its step-counter add and one fused call."""
    step = single(*_images(), batch=128, model="mlp", autograd=False)
    recorded = bench_bound.record(step)
    assert recorded.flop == FLOP_PER_IMAGE * 128
    assert len(recorded.products) == 4 + 4 + 3  # forward, weight and input gradients
    assert [func.overloadpacket.__name__ for func, _, _ in recorded.adam] == [
        "_foreach_add_", "_fused_adam_"]


def test_replaying_the_adam_calls_moves_the_weights_again() -> None:
    """The replay calls the real kernels on the step's own tensors, not a stand-in."""
    step = single(*_images(), batch=128, model="mlp", autograd=False)
    recorded = bench_bound.record(step)
    params = recorded.adam[1][1][0]  # _fused_adam_(params, grads, ...)
    before = [p.clone() for p in params]
    recorded.replay_adam()
    assert any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))
