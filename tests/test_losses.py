from __future__ import annotations

import math

import torch

from vaelab.losses import (
    bernoulli_nll,
    elbo_terms,
    gaussian_kl,
    iw_bound,
    log_normal,
    log_standard_normal,
    pixel_mse,
)


def test_bernoulli_nll_matches_hand_computation() -> None:
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    x = torch.tensor([[1.0, 0.0, 0.25]])
    p = torch.sigmoid(logits)
    expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert torch.allclose(bernoulli_nll(logits, x), expected.reshape(1), atol=1e-6)
    # Hand values: -log(0.5) + -log(1 - sigmoid(2)) + ...
    by_hand = math.log(2) + math.log(1 + math.exp(2)) + (0.25 * math.log(1 + math.exp(1))
                                                         + 0.75 * math.log(1 + math.exp(-1)))
    assert abs(bernoulli_nll(logits, x).item() - by_hand) < 1e-5


def test_bernoulli_nll_is_finite_for_saturated_logits() -> None:
    logits = torch.tensor([[100.0, -100.0]])
    x = torch.tensor([[0.0, 1.0]])
    assert torch.isfinite(bernoulli_nll(logits, x)).all()
    assert abs(bernoulli_nll(logits, x).item() - 200.0) < 1e-3


def test_kl_closed_form_matches_monte_carlo() -> None:
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.3, -0.7, 0.1]])
    z = mu + torch.randn(400_000, 3) * torch.exp(0.5 * logvar)
    mc = (log_normal(z, mu, logvar) - log_standard_normal(z)).mean()
    assert abs(gaussian_kl(mu, logvar).item() - mc.item()) < 0.02


def test_kl_zero_at_prior_and_positive_elsewhere() -> None:
    assert gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() < 1e-7
    assert (gaussian_kl(torch.randn(10, 5), torch.randn(10, 5)) > 0).all()


def test_elbo_terms_on_tiny_batch_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    mu = torch.tensor([[1.0], [0.0]])
    logvar = torch.tensor([[0.0], [math.log(2.0)]])
    terms = elbo_terms(logits, x, mu, logvar, beta=2.0)
    recon = [2 * math.log(2), math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))]
    kl = [0.5 * 1.0, 0.5 * (2.0 - 1.0 - math.log(2.0))]
    for i in range(2):
        assert abs(terms.recon_nll[i].item() - recon[i]) < 1e-5
        assert abs(terms.kl[i].item() - kl[i]) < 1e-6
        assert abs(terms.loss[i].item() - (recon[i] + 2.0 * kl[i])) < 1e-5


def test_iw_bound_by_hand() -> None:
    # Weights 1, 3 (image 0) and e^-2, e^-2 (image 1): log of their means, log 2 and -2.
    log_weights = torch.tensor([[0.0, -2.0], [math.log(3.0), -2.0]])
    assert torch.allclose(iw_bound(log_weights), torch.tensor([math.log(2.0), -2.0]))
    assert iw_bound(log_weights[:1]).tolist() == [0.0, -2.0]  # K = 1: the weight itself


def test_pixel_mse_by_hand() -> None:
    # Two images (B, 1, 2, 1): decoded means 1/2, 1/2 and sigmoid(ln 3) = 3/4, 1/4.
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), -math.log(3.0)]]).view(2, 1, 2, 1)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 1, 2, 1)
    mse = pixel_mse(logits, x)
    assert mse.shape == (2,)
    assert torch.allclose(mse, torch.tensor([0.25 + 0.25, 0.5625 + 0.5625]))


def test_elbo_terms_weight_the_kl_by_one_unless_told() -> None:
    logits, x = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    terms = elbo_terms(logits, x, mu, logvar)
    assert torch.allclose(terms.kl, torch.full((2,), 1.5))
    assert torch.allclose(terms.loss, torch.full((2,), 4 * math.log(2.0) + 1.5))
