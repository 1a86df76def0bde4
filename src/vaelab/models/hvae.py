"""A VAE with two stochastic layers, inferred as in the ladder VAE (Sønderby et al. 2016).

Generative model, top down:  z2 ~ N(0, I),  z1 ~ N(mu_p(z2), var_p(z2)),  x ~ Bernoulli(f(z1)).
Inference shares the generative top-down pass: a bottom-up network gives q(z2 | x) and a
Gaussian "likelihood" term for z1, which is merged with p(z1 | z2) by precision weighting:

    q(z1 | x, z2) ∝ N(z1; mu_d(x), var_d(x)) · N(z1; mu_p(z2), var_p(z2)).

Layer sizes: 784-200-200-z1 (Burda et al.'s one-layer widths) and 200-100-100-z2 with tanh,
z1 = 2 z2 (100 and 50 at --z-dim 50). This is not Burda et al.'s two-layer network, whose
deterministic layers are narrower (100 and 50 units) and whose inference is bottom-up; that one
is ``burda2``.

The VAE interface holds on the top layer: ``encode(x)`` gives q(z2 | x) (exactly Gaussian), and
``decode(z2)`` decodes through the mean of p(z1 | z2), so pictures, latent walks and prior
samples work as for any VAE. Training minimises the negative ELBO with both KL terms in closed
form (the z1 term given the sampled z2), or, with ``--iw-samples K`` > 1, the negative K-sample
importance-weighted bound (Burda et al.'s two-layer IWAE). ``importance_log_weights`` scores both
layers, log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x,z2) - log q(z2|x), so the likelihood
estimator is exact in expectation for this model too.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vaelab.losses import (
    bernoulli_nll,
    gaussian_kl,
    gaussian_kl_between,
    iw_bound,
    log_normal,
    log_standard_normal,
)
from vaelab.models.base import VAE, ModelConfig, VAEOutput
from vaelab.models.mlp import BURDA_HIDDEN, linear_stack
from vaelab.models.registry import register_model

__all__ = ["LadderVAE"]

_TOP_HIDDEN = (100, 100)


class _Draws(NamedTuple):
    """k joint samples (z2, z1) ~ q for a batch, with the terms of their log weights."""

    logits: torch.Tensor  # (k * B, 1, H, W), sample-major
    z2: torch.Tensor  # (k, B, z_dim)
    log_px: torch.Tensor  # (k, B) log p(x | z1)
    log_p_over_q: torch.Tensor  # (k, B) log p(z1, z2) - log q(z1, z2 | x)
    kl: torch.Tensor  # (k, B) KL(q(z2|x) || p(z2)) + KL(q(z1|x,z2) || p(z1|z2)), closed forms
    mu2: torch.Tensor  # (B, z_dim)
    logvar2: torch.Tensor  # (B, z_dim)


class LadderVAE(VAE):
    """Two Gaussian latent layers: z1 (2 z_dim units) below, z2 (z_dim units) on top."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        z2, self.z1_dim = config.z_dim, 2 * config.z_dim
        self.bottom_up = linear_stack([config.n_pixels, *BURDA_HIDDEN], "tanh")
        self.to_z1_evidence = nn.Linear(BURDA_HIDDEN[-1], 2 * self.z1_dim)
        self.up_top = linear_stack([BURDA_HIDDEN[-1], *_TOP_HIDDEN], "tanh")
        self.to_posterior = nn.Linear(_TOP_HIDDEN[-1], 2 * z2)
        self.top_down = linear_stack([z2, *_TOP_HIDDEN], "tanh")
        self.to_z1_prior = nn.Linear(_TOP_HIDDEN[-1], 2 * self.z1_dim)
        self.decoder = linear_stack([self.z1_dim, *BURDA_HIDDEN], "tanh")
        self.to_logits = nn.Linear(BURDA_HIDDEN[-1], config.n_pixels)

    def _bottom_up(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x -> (mu_d, logvar_d) evidence for z1 and (mu2, logvar2) of q(z2 | x)."""
        h = self.bottom_up(x.flatten(1))
        mu_d, logvar_d = self.to_z1_evidence(h).chunk(2, dim=-1)
        mu2, logvar2 = self.to_posterior(self.up_top(h)).chunk(2, dim=-1)
        return mu_d, logvar_d, mu2, logvar2

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, mu2, logvar2 = self._bottom_up(x)
        return mu2, logvar2

    def prior_z1(self, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z1 | z2), for z2 of any leading shape."""
        mu, logvar = self.to_z1_prior(self.top_down(z2)).chunk(2, dim=-1)
        return mu, logvar

    def decode_z1(self, z1: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.to_logits(self.decoder(z1))
        return logits.view(-1, *self.config.image_shape)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Top latent z2 (B, z_dim) -> logits, through the mean of p(z1 | z2)."""
        return self.decode_z1(self.prior_z1(z)[0])

    def _draw(self, x: torch.Tensor, k: int) -> _Draws:
        mu_d, logvar_d, mu2, logvar2 = self._bottom_up(x)
        eps = torch.randn((k, *mu2.shape), device=x.device, dtype=mu2.dtype)
        z2 = mu2 + eps * (0.5 * logvar2).exp()  # (k, B, z_dim)
        mu_p, logvar_p = self.prior_z1(z2)  # (k, B, z1_dim)
        # Precision weighting, written with sigmoids of log-variance gaps so nothing overflows.
        weight_d = torch.sigmoid(logvar_p - logvar_d)
        mu1 = weight_d * mu_d + (1 - weight_d) * mu_p
        logvar1 = -torch.logaddexp(-logvar_d, -logvar_p)
        z1 = mu1 + torch.randn_like(mu1) * (0.5 * logvar1).exp()
        logits = self.decode_z1(z1.flatten(0, 1))
        log_px = -bernoulli_nll(logits, x.repeat(k, *([1] * (x.dim() - 1)))).view(k, -1)
        log_p_over_q = (log_standard_normal(z2) + log_normal(z1, mu_p, logvar_p)
                        - log_normal(z2, mu2, logvar2) - log_normal(z1, mu1, logvar1))
        kl = gaussian_kl(mu2, logvar2) + gaussian_kl_between(mu1, logvar1, mu_p, logvar_p)
        return _Draws(logits, z2, log_px, log_p_over_q, kl, mu2, logvar2)

    def importance_log_weights(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        draws = self._draw(x, k)
        return draws.log_px + draws.log_p_over_q

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float | torch.Tensor = 1.0
    ) -> VAEOutput:
        k = self.config.iw_samples
        d = self._draw(x, k)
        recon, kl = -d.log_px.mean(0), d.kl.mean(0)
        if k == 1:
            loss = (recon + beta * kl).mean()  # the ELBO, both KL terms in closed form
        else:
            loss = -iw_bound(d.log_px + beta * d.log_p_over_q).mean()
        return VAEOutput(d.logits[:len(x)], d.mu2, d.logvar2, d.z2[0], loss, recon, kl)


@register_model("hvae", "two stochastic layers, ladder inference (Sønderby et al. 2016): "
                "784-200-200-z1(2z)-100-100-z; --iw-samples K > 1 trains the IWAE bound")
def hvae(config: ModelConfig) -> LadderVAE:
    return LadderVAE(config)
