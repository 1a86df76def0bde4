"""Burda et al.'s network with two stochastic layers (Importance Weighted Autoencoders, 2015).

Section 5 of the paper: stochastic layers z1 of 100 and z2 of 50 Gaussian units; two
deterministic tanh layers of 100 units between x and z1 and two of 50 between z1 and z2, the
same in the recognition and the generative network:

    q(z1 | x) q(z2 | z1):   x -100-100-> z1 -50-50-> z2
    p(z2) p(z1 | z2) p(x | z1):   z2 ~ N(0, I) -50-50-> z1 -100-100-> x (Bernoulli)

z2 has ``--z-dim`` units and z1 twice as many (100 and 50 at ``--z-dim 50``, the paper's). Each
Gaussian layer gives a mean and a log-variance. Inference is bottom-up, as in the paper (not the
ladder inference of ``hvae``). Training minimises the negative K-sample importance-weighted
bound, K = ``--iw-samples`` (the paper's VAE is K = 1, where the bound is the ELBO with both KL
terms estimated from the one draw; its IWAE uses K = 50), and ``beta`` scales the prior-over-
posterior part of every weight.

The VAE interface holds on the top layer: ``encode(x)`` is q(z2 | z1) at the mean of q(z1 | x)
(used for pictures and latent maps only), and ``decode(z2)`` decodes through the mean of
p(z1 | z2). ``importance_log_weights`` scores both layers, so the likelihood estimator is exact
in expectation for this model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vaelab.losses import bernoulli_nll, iw_bound, log_normal, log_standard_normal
from vaelab.models.base import VAE, ModelConfig, VAEOutput
from vaelab.models.mlp import linear_stack
from vaelab.models.registry import register_model

__all__ = ["BURDA2_LOWER", "BURDA2_UPPER", "TwoLayerIWAE"]

BURDA2_LOWER = (100, 100)  # deterministic units between x and z1
BURDA2_UPPER = (50, 50)  # deterministic units between z1 and z2


class _Draws(NamedTuple):
    """k joint draws (z1, z2) ~ q(z1 | x) q(z2 | z1) for a batch, with their log weights' terms."""

    logits: torch.Tensor  # (k * B, 1, H, W), sample-major
    z2: torch.Tensor  # (k, B, z_dim)
    mu2: torch.Tensor  # (k, B, z_dim) of q(z2 | z1)
    logvar2: torch.Tensor  # (k, B, z_dim)
    log_px: torch.Tensor  # (k, B) log p(x | z1)
    log_p_over_q: torch.Tensor  # (k, B) log p(z1, z2) - log q(z1, z2 | x)


def _gaussian(layer: nn.Linear, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu, logvar = layer(h).chunk(2, dim=-1)
    return mu, logvar


def _draw(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class TwoLayerIWAE(VAE):
    """Two Gaussian latent layers, z1 (2 z_dim units) below z2 (z_dim units), inferred bottom-up."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        z2, self.z1_dim = config.z_dim, 2 * config.z_dim
        self.x_to_z1 = linear_stack([config.n_pixels, *BURDA2_LOWER], "tanh")
        self.to_q1 = nn.Linear(BURDA2_LOWER[-1], 2 * self.z1_dim)
        self.z1_to_z2 = linear_stack([self.z1_dim, *BURDA2_UPPER], "tanh")
        self.to_q2 = nn.Linear(BURDA2_UPPER[-1], 2 * z2)
        self.z2_to_z1 = linear_stack([z2, *BURDA2_UPPER], "tanh")
        self.to_p1 = nn.Linear(BURDA2_UPPER[-1], 2 * self.z1_dim)
        self.z1_to_x = linear_stack([self.z1_dim, *BURDA2_LOWER], "tanh")
        self.to_logits = nn.Linear(BURDA2_LOWER[-1], config.n_pixels)

    def q1(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z1 | x), each (B, 2 z_dim)."""
        return _gaussian(self.to_q1, self.x_to_z1(x.flatten(1)))

    def q2(self, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z2 | z1), for z1 of any leading shape."""
        return _gaussian(self.to_q2, self.z1_to_z2(z1))

    def prior_z1(self, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z1 | z2), for z2 of any leading shape."""
        return _gaussian(self.to_p1, self.z2_to_z1(z2))

    def decode_z1(self, z1: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.to_logits(self.z1_to_x(z1))
        return logits.view(-1, *self.config.image_shape)

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z2 | z1) at the mean of q(z1 | x): the top layer's code of x, for pictures."""
        return self.q2(self.q1(x)[0])

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Top latent z2 (B, z_dim) -> logits, through the mean of p(z1 | z2)."""
        return self.decode_z1(self.prior_z1(z)[0])

    def _draws(self, x: torch.Tensor, k: int) -> _Draws:
        mu1, logvar1 = self.q1(x)
        eps = torch.randn((k, *mu1.shape), device=x.device, dtype=mu1.dtype)
        z1 = mu1 + eps * (0.5 * logvar1).exp()  # (k, B, 2 z_dim)
        mu2, logvar2 = self.q2(z1)
        z2 = _draw(mu2, logvar2)  # (k, B, z_dim)
        mu_p, logvar_p = self.prior_z1(z2)
        logits = self.decode_z1(z1.flatten(0, 1))
        log_px = -bernoulli_nll(logits, x.repeat(k, *([1] * (x.dim() - 1)))).view(k, -1)
        log_p_over_q = (log_standard_normal(z2) + log_normal(z1, mu_p, logvar_p)
                        - log_normal(z1, mu1, logvar1) - log_normal(z2, mu2, logvar2))
        return _Draws(logits, z2, mu2, logvar2, log_px, log_p_over_q)

    def importance_log_weights(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        draws = self._draws(x, k)
        return draws.log_px + draws.log_p_over_q

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float | torch.Tensor = 1.0
    ) -> VAEOutput:
        """The negative K-sample bound as the loss; ``recon_nll`` is -log p(x | z1) and ``kl``
        the one-draw estimate of both KL terms, each averaged over the K draws."""
        k = self.config.iw_samples
        d = self._draws(x, k)
        loss = -iw_bound(d.log_px + beta * d.log_p_over_q).mean()
        batch = len(x)
        return VAEOutput(d.logits[:batch], d.mu2[0], d.logvar2[0], d.z2[0], loss,
                         -d.log_px.mean(0), -d.log_p_over_q.mean(0))


@register_model("burda2", "Burda et al. (2015) two stochastic layers: 784-100-100-z1(2z)-50-50-z, "
                "tanh, bottom-up inference; the K = --iw-samples bound (1: the ELBO)")
def burda2(config: ModelConfig) -> TwoLayerIWAE:
    return TwoLayerIWAE(config)
