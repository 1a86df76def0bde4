"""The fully connected VAEs (mlp.py): K posterior draws averaged when iw_samples > 1."""

from __future__ import annotations

import pytest
import torch

from vaelab.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 28, 28, generator=generator) > 0.7).float()


@pytest.mark.parametrize("name", ["vae", "vamp"])
def test_k_draws_average_the_elbo_with_the_same_mean_and_less_spread(name: str) -> None:
    x = _batch()
    losses = {}
    for k in (1, 5):
        torch.manual_seed(0)
        model = create_model(name=name, z_dim=4, iw_samples=k, n_pseudo_inputs=20)
        with torch.no_grad():
            losses[k] = torch.stack([model(x).loss for _ in range(300)])
        out = model(x)
        assert out.recon_nll.shape == out.kl.shape == (len(x),)
        assert torch.allclose(out.loss, (out.recon_nll + out.kl).mean(), rtol=1e-5)
    se = ((losses[1].var() + losses[5].var()) / 300).sqrt()
    assert (losses[1].mean() - losses[5].mean()).abs() < 4 * se  # one bound, in expectation
    assert losses[5].var() < losses[1].var() / 2.5  # of five draws: about a fifth the variance


def test_one_draw_is_the_base_forward_bit_for_bit() -> None:
    torch.manual_seed(0)
    model = create_model(name="vae", z_dim=4)
    x = _batch()
    torch.manual_seed(1)
    ours = model(x).loss
    torch.manual_seed(1)
    base = super(type(model), model).forward(x).loss
    assert torch.equal(ours, base)
