"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior").

The prior is the encoder's own posterior averaged over learned pseudo-inputs u_1..u_K:

    p(z) = (1/K) Σ_k q(z | u_k)

with K = ``ModelConfig.n_pseudo_inputs`` (500, as in the paper). Pseudo-inputs live in pixel
space, clipped to [0, 1] by a hardtanh and initialised near 0.05 as in the authors' code. The
KL term has no closed form, so it is the one-sample Monte Carlo estimate log q(z|x) - log p(z)
at the z that was decoded; ``sample_prior`` draws from the mixture. Networks are Burda's
(784-200-200-z, tanh), so ``vae`` and ``vamp`` differ only in the prior.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.losses import LossTerms, bernoulli_nll, log_normal
from vaelab.models.base import ModelConfig
from vaelab.models.mlp import BURDA_HIDDEN, MLPVAE
from vaelab.models.registry import register_model

__all__ = ["VampVAE"]

_LOG_2PI = math.log(2 * math.pi)


class VampVAE(MLPVAE):
    """Burda's MLP VAE with a mixture-of-posteriors prior over learned pseudo-inputs."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, encoder_hidden=BURDA_HIDDEN, decoder_hidden=BURDA_HIDDEN,
                         activation="tanh")
        n = config.n_pseudo_inputs
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(n, *config.image_shape))

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances of the K mixture components, each (K, z_dim)."""
        return self.encode(F.hardtanh(self.pseudo_inputs, 0.0, 1.0))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log (1/K) Σ_k N(z; mu_k, var_k) for z (..., z_dim), shape (...).

        The squares are expanded into matrix products so memory is (rows, K), not
        (rows, K, z_dim): the estimator asks for thousands of rows at once.
        """
        mu, logvar = self.prior_components()
        precision = torch.exp(-logvar)  # (K, D)
        flat = z.reshape(-1, z.shape[-1])
        quadratic = (flat.pow(2) @ precision.T - 2 * flat @ (mu * precision).T
                     + (mu.pow(2) * precision).sum(1))  # (rows, K): Σ_d (z - mu_k)^2 / var_k
        log_components = -0.5 * (z.shape[-1] * _LOG_2PI + logvar.sum(1) + quadratic)
        log_p = torch.logsumexp(log_components, dim=1) - math.log(len(mu))
        return log_p.view(z.shape[:-1])

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pick a component uniformly, then draw from its Gaussian."""
        mu, logvar = self.prior_components()
        index = torch.randint(len(mu), (n,), generator=generator).to(mu.device)
        eps = torch.randn(n, self.z_dim, generator=generator).to(mu.device)
        return mu[index] + eps * torch.exp(0.5 * logvar[index])

    def loss_terms(
        self, x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
        z: torch.Tensor, beta: float | torch.Tensor,
    ) -> LossTerms:
        recon = bernoulli_nll(logits, x)
        kl = log_normal(z, mu, logvar) - self.log_prior(z)  # one-sample estimate of the KL
        return LossTerms(loss=recon + beta * kl, recon_nll=recon, kl=kl)


@register_model("vamp", "VampPrior VAE (Tomczak & Welling 2018): Burda's network, a prior of "
                "500 learned pseudo-inputs")
def vamp(config: ModelConfig) -> VampVAE:
    return VampVAE(config)
