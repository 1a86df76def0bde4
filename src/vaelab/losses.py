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
    "gaussian_kl_between",
    "iw_bound",
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


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor, batch_dims: int = 1) -> torch.Tensor:
    """-log p(x | z) for Bernoulli pixels with intensities ``x`` in [0, 1], per image.

    Computed from logits (BCE-with-logits), which stays finite where sigmoid + BCE would
    saturate to log(0). Sums over every dimension after the first ``batch_dims``: images
    (B, 1, H, W) give (B,); a stack of models' flat images (M, B, D) with ``batch_dims=2``
    gives (M, B).
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return per_pixel.flatten(batch_dims).sum(-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over the last dimension.

    Kingma & Welling (2014), Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_kl_between(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) for diagonal Gaussians, summed over the last dim."""
    ratio = torch.exp(logvar_q - logvar_p)
    return 0.5 * (logvar_p - logvar_q + ratio + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p)
                  - 1.0).sum(-1)


def iw_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/K) Σ_k exp(log_weights[k]) for (K, B) log weights.

    Burda, Grosse & Salakhutdinov (2015), eq. 8; K = 1 is the ELBO. Shape (B,).
    """
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


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
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float | torch.Tensor = 1.0,
    batch_dims: int = 1,
) -> LossTerms:
    """Per-image negative ELBO with its reconstruction and KL terms.

    ``beta`` weights the KL term (a number, or a tensor that broadcasts against the per-image
    terms, e.g. one weight per stacked model); ``batch_dims`` as in ``bernoulli_nll``.
    """
    recon = bernoulli_nll(logits, x, batch_dims)
    kl = gaussian_kl(mu, logvar)
    return LossTerms(loss=recon + beta * kl, recon_nll=recon, kl=kl)
