"""Loss terms of a VAE, as pure functions of tensors.

Every function returns one value per image (shape (B,)), summed over pixels or latent units,
in nats; callers average over the batch. The total is the negative ELBO
``recon_nll + beta * kl`` (Kingma & Welling 2014, eq. 10).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "LossTerms",
    "bernoulli_nll",
    "elbo_terms",
    "gaussian_kl",
    "log_normal",
    "log_standard_normal",
    "pixel_mse",
]

_LOG_2PI = math.log(2 * math.pi)


class LossTerms(NamedTuple):
    """Per-image loss terms, each of shape (B,)."""

    loss: torch.Tensor  # recon_nll + beta * kl: what is minimised
    recon_nll: torch.Tensor  # -log p(x | z), Bernoulli (binary cross-entropy) summed over pixels
    kl: torch.Tensor  # KL(q(z | x) || p(z)), summed over latent units


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) for Bernoulli pixels with intensities ``x`` in [0, 1], per image.

    Computed from logits (BCE-with-logits), which stays finite where sigmoid + BCE would
    saturate to log(0).
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return per_pixel.flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, per image.

    Kingma & Welling (2014), Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (_LOG_2PI + z.pow(2)).sum(-1)


def pixel_mse(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error between the decoded mean image sigmoid(logits) and ``x``, summed per image."""
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)


def elbo_terms(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> LossTerms:
    """Per-image negative ELBO with its reconstruction and KL terms."""
    recon = bernoulli_nll(logits, x)
    kl = gaussian_kl(mu, logvar)
    return LossTerms(loss=recon + beta * kl, recon_nll=recon, kl=kl)
