"""adam_step: the same bits as torch's Adam.step, and Adam.step itself where Adam is not plain."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from vaelab.training.adam import adam_step


def _params(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, requires_grad=True)
            for shape in ((7, 5), (5,), (3, 7))]


def _train(direct: bool, steps: int = 6, resume_from: dict[str, Any] | None = None,
           **adam: Any) -> tuple[list[torch.Tensor], dict[str, Any]]:
    params = _params(0)
    optimizer = torch.optim.Adam(params, lr=1e-2, fused=True, **adam)
    if resume_from is not None:  # a copy: loading keeps the very tensors it is given
        optimizer.load_state_dict(copy.deepcopy(resume_from))
    step = adam_step(optimizer) if direct else optimizer.step
    generator = torch.Generator().manual_seed(1)
    for i in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        if i == 3:  # a schedule changing the learning rate and betas between steps
            optimizer.param_groups[0]["lr"] = 3e-3
            optimizer.param_groups[0]["betas"] = (0.8, 0.99)
        step()
    return [p.detach().clone() for p in params], optimizer.state_dict()


def _assert_same(a: tuple[list[torch.Tensor], dict[str, Any]],
                 b: tuple[list[torch.Tensor], dict[str, Any]]) -> None:
    for pa, pb in zip(a[0], b[0], strict=True):
        assert torch.equal(pa, pb)
    for number, entry in a[1]["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, b[1]["state"][number][key]), (number, key)


def test_the_direct_step_is_bit_identical_to_adam_step() -> None:
    _assert_same(_train(direct=True), _train(direct=False))
    # Also when the moments come from a checkpoint, so the very first call is a direct one.
    _, state = _train(direct=False, steps=2)
    _assert_same(_train(direct=True, resume_from=state), _train(direct=False, resume_from=state))


def test_the_direct_step_honours_epsilon_and_betas() -> None:
    # Burda et al.'s epsilon and other betas (TrainConfig.adam_eps, adam_betas) reach the kernel.
    burda = {"eps": 1e-4, "betas": (0.85, 0.995)}
    _assert_same(_train(direct=True, **burda), _train(direct=False, **burda))
    assert not torch.equal(_train(direct=True, **burda)[0][0], _train(direct=True)[0][0])


def test_a_plain_adam_is_stepped_directly() -> None:
    optimizer = torch.optim.Adam(_params(0), lr=1e-3, fused=True)
    assert adam_step(optimizer) != optimizer.step


@pytest.mark.parametrize("adam", [{"amsgrad": True}, {"weight_decay": 0.1},
                                  {"maximize": True}, {"fused": False, "foreach": False}])
def test_any_other_adam_keeps_its_own_step(adam: dict[str, Any]) -> None:
    settings = {"fused": True, **adam}
    optimizer = torch.optim.Adam(_params(0), lr=1e-3, **settings)
    assert adam_step(optimizer) == optimizer.step


def test_a_missing_gradient_is_left_to_adam() -> None:
    params = _params(0)
    optimizer = torch.optim.Adam(params, lr=1e-2, fused=True)
    step = adam_step(optimizer)
    for p in params:
        p.grad = torch.ones_like(p)
    step()  # creates the moments
    params[1].grad = None  # Adam skips a parameter without a gradient
    before = params[1].detach().clone()
    step()
    assert torch.equal(params[1], before)
    assert float(optimizer.state[params[0]]["step"]) == 2.0
    assert float(optimizer.state[params[1]]["step"]) == 1.0
