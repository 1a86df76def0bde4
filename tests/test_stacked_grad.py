"""The written-out gradient of the stacked MLPs against autograd, and where training uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from conftest import assert_padding_has_zero_gradient
from vaelab.config import TrainConfig
from vaelab.models import create_model
from vaelab.training import RunOptions, fit, fit_many
from vaelab.training.fit import fresh_step, stack_of_one
from vaelab.training.stacked import StackedMLP
from vaelab.training.stacked_grad import HandGradient, hand_gradient_blocker
from vaelab.training.stacked_step import StackedStep
from vaelab.training.step import TrainStep, make_optimizer


def _stack(name: str, z_dims: tuple[int, ...], dtype: torch.dtype) -> StackedMLP:
    torch.manual_seed(0)
    models = [create_model(name=name, z_dim=z).to(dtype) for z in z_dims]
    return StackedMLP(models, torch.device("cpu"))


def _eps(z_dims: tuple[int, ...], batch: int, dtype: torch.dtype) -> torch.Tensor:
    eps = torch.zeros(len(z_dims), batch, max(z_dims), dtype=dtype)
    for k, z in enumerate(z_dims):
        eps[k, :, :z] = torch.randn(batch, z, dtype=dtype)
    return eps


@pytest.mark.parametrize(("name", "z_dims", "groups"), [
    ("seed", (1, 2, 5), None),  # ReLU, three z_dims padded to 5
    ("vae", (3, 2), None),  # tanh, two hidden layers each side
    ("mlp", (2, 2), (0, 1)),  # two data seeds: each model reads its own batch
])
def test_hand_gradient_equals_autograd_in_float64(name: str, z_dims: tuple[int, ...],
                                                  groups: tuple[int, ...] | None) -> None:
    dtype, batch = torch.float64, 7
    stacked = _stack(name, z_dims, dtype)
    x = torch.rand((2, batch, 1, 28, 28) if groups else (batch, 1, 28, 28), dtype=dtype)
    index = torch.tensor(groups) if groups else None
    eps = _eps(z_dims, batch, dtype)
    betas = torch.tensor([0.5, 1.0, 0.25][:len(z_dims)], dtype=dtype)

    reference = stacked.terms(x, eps, betas, index)
    reference.total.backward()  # type: ignore[no-untyped-call]
    expected = {n: p.grad.clone() for n, p in stacked.params.items()}  # type: ignore[union-attr]
    for p in stacked.parameters():
        p.grad = None
    terms = HandGradient(stacked)(x, eps, betas, index)

    torch.testing.assert_close(terms.total, reference.total.detach(), rtol=1e-13, atol=0)
    torch.testing.assert_close(terms.sums, reference.sums, rtol=1e-13, atol=0)
    for n, p in stacked.params.items():
        assert p.grad is not None
        torch.testing.assert_close(p.grad, expected[n], rtol=1e-10, atol=1e-13, msg=n)
        assert p.grad.abs().sum() > 0, n


def test_padded_units_get_exactly_zero_gradient() -> None:
    z_dims = (1, 3, 4)
    stacked = _stack("mlp", z_dims, torch.float32)
    HandGradient(stacked)(torch.rand(6, 1, 28, 28), _eps(z_dims, 6, torch.float32),
                          torch.ones(3))
    assert_padding_has_zero_gradient(stacked, z_dims)


def test_an_activation_without_a_written_derivative_falls_back_to_autograd() -> None:
    torch.manual_seed(0)
    model: Any = create_model(name="mlp", z_dim=2)
    model.encoder[1] = nn.ELU()
    stacked = StackedMLP([model], torch.device("cpu"))
    assert hand_gradient_blocker(stacked) == "no written-out derivative of ELU"
    with pytest.raises(ValueError, match="ELU"):
        HandGradient(stacked)
    images = (torch.rand(16, 28, 28) * 255).to(torch.uint8)
    rng = [{"cpu": torch.Generator().manual_seed(1).get_state()}]
    step = StackedStep([model], [TrainConfig(model="mlp", z_dim=2)], images, rng, [None])
    assert step.hand_gradient is None
    assert torch.isfinite(step(torch.arange(8).unsqueeze(0), [1.0])).all()


def _train(hand: bool, steps: int = 5) -> list[torch.Tensor]:
    torch.manual_seed(0)
    models = [create_model(name="seed", z_dim=z) for z in (2, 5)]
    configs = [TrainConfig(model="seed", z_dim=m.z_dim, batch_size=8, grad_clip=5.0)
               for m in models]
    rngs = [{"cpu": torch.Generator().manual_seed(s).get_state()} for s in (1, 2)]
    images = (torch.rand(40, 28, 28, generator=torch.Generator().manual_seed(3)) * 255
              ).to(torch.uint8)
    step = StackedStep(models, configs, images, rngs, [None, None], hand_gradient=hand)
    assert (step.hand_gradient is not None) == hand
    sums = [step(torch.arange(8 * i, 8 * (i + 1)).unsqueeze(0), [1.0, 0.5]).clone()
            for i in range(steps)]
    return [*sums, *[p.detach().clone() for p in step.stacked.parameters()]]


def test_hand_step_trains_as_the_autograd_step() -> None:
    # fp32, with gradient clipping and two KL weights: equal up to rounding.
    for a, b in zip(_train(hand=True), _train(hand=False), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fit_trains_a_fully_connected_model_alone_as_a_stack_of_one(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    def config(out: str) -> TrainConfig:
        return TrainConfig(model="mlp", z_dim=3, dataset=tiny_dataset,
                           data_dir=str(tiny_dataset_dir), epochs=2, batch_size=16,
                           val_size=32, out=str(tmp_path / out))

    alone = fit(config("alone"), RunOptions(pictures=False))
    (stacked,) = fit_many([config("stacked")], RunOptions(pictures=False))
    # The same step, so the same numbers to the last bit.
    for pa, pb in zip(alone.model.parameters(), stacked.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert [r["val_loss"] for r in alone.history] == [r["val_loss"] for r in stacked.history]


@pytest.mark.parametrize(("changes", "kind"), [
    ({}, StackedStep),  # fully connected, fp32, CPU: the written-out gradient
    ({"model": "conv"}, TrainStep),
    ({"binarize": "dynamic"}, StackedStep),  # one model: its binary batch from its generator
    ({"iw_samples": 2}, TrainStep),
])
def test_fresh_step_is_the_step_fit_chooses(changes: dict[str, Any], kind: type) -> None:
    config = TrainConfig(**{"model": "mlp", "z_dim": 3, "batch_size": 8, **changes})
    model = create_model(config.model_config())
    images = torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8)
    step = fresh_step(model, config, images, torch.zeros(32, dtype=torch.long))
    assert type(step) is kind
    assert stack_of_one(model, config, torch.device("cpu")) == (kind is StackedStep)
    sums = step(torch.arange(8).unsqueeze(0), [1.0])
    assert sums.shape[-1] == 3 and torch.isfinite(sums).all()


def test_a_stack_of_one_binarises_as_the_autograd_step_does() -> None:
    # Dynamic binarisation, then the noise, from the same stream as TrainStep draws both from
    # the global generator: the same binary pixels and noise, so the same losses.
    config = TrainConfig(model="vae", z_dim=3, batch_size=8, binarize="dynamic")
    images = torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8)
    labels = torch.zeros(32, dtype=torch.long)
    losses = {}
    for kind in (StackedStep, TrainStep):
        torch.manual_seed(0)
        model = create_model(config.model_config())
        step = fresh_step(model, config, images, labels) if kind is StackedStep else \
            TrainStep(model, make_optimizer(model, config, torch.device("cpu")), config, images,
                      labels)
        assert type(step) is kind
        losses[kind] = torch.stack([step(torch.arange(i, i + 8).unsqueeze(0), [1.0])[0]
                                    for i in range(0, 32, 8)])
    torch.testing.assert_close(losses[StackedStep], losses[TrainStep], rtol=1e-5, atol=1e-3)


def test_a_compiled_model_is_not_trained_as_a_stack_of_one() -> None:
    config = TrainConfig(model="mlp", z_dim=3, compile=True)
    assert not stack_of_one(create_model(config.model_config()), config, torch.device("cpu"))
