"""I_q(x; z) and the marginal KL (vaelab.evaluation.information) on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.evaluation.information import aggregate_log_density, information, mean_kl


def _gaussian(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_aggregate_density_is_the_mixture_of_every_posterior() -> None:
    mu, logvar = _gaussian(50, 3, 1), 0.3 * _gaussian(50, 3, 2)
    z = 2 * _gaussian(40, 3, 3)
    each = torch.distributions.Normal(mu[None], torch.exp(0.5 * logvar)[None]).log_prob(z[:, None])
    expected = torch.logsumexp(each.sum(-1), 1) - math.log(50)
    # Blocks of a few rows: the blocked product gives the same densities.
    assert torch.allclose(aggregate_log_density(z, mu, logvar, block=150), expected, atol=1e-10)


def test_linear_gaussian_encoder_on_gaussian_data_has_the_closed_form() -> None:
    """x ~ N(0, I_2), q(z | x) = N(x, 1/3): I(x; z) = 1/2 log(1 + 3) per dimension."""
    n, d, noise = 10_000, 2, 1 / 3
    found = information(_gaussian(n, d, 7), torch.full((n, d), math.log(noise),
                                                        dtype=torch.float64), seed=8)
    exact = d / 2 * math.log(1 + 1 / noise)  # 1.386 nats
    # With 10,000 images the mixture's bias is below 0.01 nats and the estimate varies by
    # about 0.015 nats between draws of the data (measured over six draws).
    assert found.i_q == pytest.approx(exact, abs=0.04)
    assert 0.004 < found.i_q_se < 0.02
    assert found.ceiling == pytest.approx(math.log(n))


def test_a_constant_encoder_carries_no_information() -> None:
    n = 3000
    mu = torch.full((n, 4), 0.7, dtype=torch.float64)
    found = information(mu, torch.full((n, 4), -1.0, dtype=torch.float64), samples=2)
    assert abs(found.i_q) < 1e-9
    # All of its KL is the marginal KL: the codes sit away from the prior, saying nothing.
    assert found.marginal_kl == pytest.approx(found.mean_kl, abs=1e-9)
    assert found.mean_kl > 0.5


def test_perfectly_separated_posteriors_reach_the_ceiling_and_not_beyond() -> None:
    n = 2000
    mu = (100.0 * torch.arange(n, dtype=torch.float64))[:, None]
    found = information(mu, torch.full((n, 1), math.log(1e-6), dtype=torch.float64))
    assert found.i_q == pytest.approx(math.log(n), abs=1e-9)
    assert found.i_q <= found.ceiling + 1e-12
    # Half as far apart as their width: no longer told apart, far below the ceiling.
    close = information(mu / 200, torch.zeros(n, 1, dtype=torch.float64))
    assert close.i_q < math.log(n) - 1


def test_mean_kl_is_information_plus_the_marginal_kl() -> None:
    """ELBO surgery: E KL(q(z|x) || p) = I_q + KL(q(z) || p), the marginal KL measured on its
    own by Monte Carlo over the aggregate posterior."""
    n, d = 4000, 3
    mu, logvar = 1.5 * _gaussian(n, d, 11), 0.5 * _gaussian(n, d, 12) - 1
    found = information(mu, logvar, seed=13)
    # z ~ q(z): every image's posterior drawn once (x uniform on the n images).
    z = mu + torch.exp(0.5 * logvar) * _gaussian(n, d, 14)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    terms = aggregate_log_density(z, mu, logvar) - prior
    marginal = float(terms.mean())
    se = float(terms.std()) / math.sqrt(n)
    assert found.marginal_kl == pytest.approx(marginal, abs=4 * se + 4 * found.i_q_se)
    assert found.mean_kl == pytest.approx(mean_kl(mu, logvar))
    assert found.i_q + found.marginal_kl == pytest.approx(found.mean_kl)


def test_information_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="shape"):
        information(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="samples"):
        information(torch.zeros(3, 2), torch.zeros(3, 2), samples=0)
