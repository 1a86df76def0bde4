"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2015).

Same networks as Burda's ``vae`` (784-200-200-z, tanh), trained on the tighter bound

    L_K(x) = E[ log (1/K) Σ_k w_k ],   w_k = p(x | z_k) p(z_k) / q(z_k | x),   z_k ~ q(z | x),

with K = ``ModelConfig.iw_samples`` (``--iw-samples``; Burda et al. use K = 5 and 50). K = 1 is
the ELBO. ``beta`` (beta-VAE, KL warm-up) scales log p(z) - log q(z | x) inside every weight,
which for K = 1 is exactly the beta-weighted ELBO.

What ``forward`` reports: ``loss`` is the batch mean of -L_K (what training minimises);
``recon_nll`` is -log p(x | z) averaged over the K samples and ``kl`` the closed-form
KL(q(z | x) || p(z)), so ``recon_nll + kl`` is the ordinary negative ELBO. The gap between it and
the loss is what the K samples buy. ``z`` and ``logits`` are those of the first sample.
"""

from __future__ import annotations

import torch

from vaelab.losses import bernoulli_nll, gaussian_kl, iw_bound, log_normal
from vaelab.models.base import ModelConfig, VAEOutput
from vaelab.models.mlp import BURDA_HIDDEN, MLPVAE
from vaelab.models.registry import register_model

__all__ = ["IWAE"]


class IWAE(MLPVAE):
    """An MLP VAE whose forward pass returns the negative K-sample importance-weighted bound."""

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float | torch.Tensor = 1.0
    ) -> VAEOutput:
        k = self.config.iw_samples
        mu, logvar = self.encode(x)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # (K, B, z_dim)
        logits = self.decode(z.flatten(0, 1))  # (K * B, 1, 28, 28), sample-major
        log_px = -bernoulli_nll(logits, x.repeat(k, *([1] * (x.dim() - 1)))).view(k, -1)
        log_pz_over_qz = self.log_prior(z) - log_normal(z, mu, logvar)  # (K, B)
        bound = iw_bound(log_px + beta * log_pz_over_qz)
        batch = len(x)
        return VAEOutput(logits[:batch], mu, logvar, z[0], -bound.mean(), -log_px.mean(0),
                         gaussian_kl(mu, logvar))


@register_model("iwae", "importance-weighted autoencoder (Burda et al. 2015) on Burda's network; "
                "K = --iw-samples (1 is the ELBO; the paper uses 5 and 50)")
def iwae(config: ModelConfig) -> IWAE:
    return IWAE(config, encoder_hidden=BURDA_HIDDEN, decoder_hidden=BURDA_HIDDEN, activation="tanh")
