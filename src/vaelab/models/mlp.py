"""Fully connected VAEs: the study's (``seed``), pytorch/examples' (``mlp``), Burda's (``vae``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from vaelab.models.base import VAE, ModelConfig, VAEOutput
from vaelab.models.registry import register_model

__all__ = ["BURDA_HIDDEN", "MLPVAE", "linear_stack"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def linear_stack(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes, an activation after each."""
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), _ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class MLPVAE(VAE):
    """Encoder pixels -> hidden... -> (mu, logvar); decoder z -> hidden... -> pixel logits."""

    def __init__(
        self,
        config: ModelConfig,
        encoder_hidden: Sequence[int],
        decoder_hidden: Sequence[int],
        activation: str = "relu",
    ) -> None:
        super().__init__(config)
        n_pixels, z_dim = config.n_pixels, config.z_dim
        self.encoder = linear_stack([n_pixels, *encoder_hidden], activation)
        # One layer emits mu and logvar together: a single matrix product instead of two.
        self.to_posterior = nn.Linear(encoder_hidden[-1], 2 * z_dim)
        self.decoder = linear_stack([z_dim, *decoder_hidden], activation)
        self.to_logits = nn.Linear(decoder_hidden[-1], n_pixels)

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.flatten(1))
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        logits: torch.Tensor = self.to_logits(self.decoder(z))
        return logits.view(-1, *self.config.image_shape)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float | torch.Tensor = 1.0
    ) -> VAEOutput:
        """The loss terms of one batch; with ``iw_samples`` K > 1, each image's terms are the
        mean over K posterior draws: the VAE objective with k samples of Burda et al. (2015),
        the same bound as K = 1 with a gradient of lower variance."""
        k = self.config.iw_samples
        if k == 1:
            return super().forward(x, y, beta)
        mu, logvar = self.encode(x, y)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = (mu + eps * (0.5 * logvar).exp()).flatten(0, 1)  # (K * B, z_dim), sample-major
        logits = self.decode(z, y)
        terms = self.loss_terms(x.repeat(k, *([1] * (x.dim() - 1))), logits, mu.repeat(k, 1),
                                logvar.repeat(k, 1), z, beta)
        per_image = [t.view(k, -1).mean(0) for t in (terms.loss, terms.recon_nll, terms.kl)]
        batch = len(x)
        return VAEOutput(logits[:batch], mu, logvar, z[:batch], per_image[0].mean(),
                         per_image[1], per_image[2])


@register_model("seed", "the study's network: 784-256-1024-(mu, logvar) | z-784-784, ReLU")
def seed(config: ModelConfig) -> MLPVAE:
    return MLPVAE(config, encoder_hidden=[256, 1024], decoder_hidden=[784])


@register_model("mlp", "pytorch/examples VAE: 784-400-z | z-400-784, ReLU")
def mlp(config: ModelConfig) -> MLPVAE:
    return MLPVAE(config, encoder_hidden=[400], decoder_hidden=[400])


# Burda et al. (2015), section 5: two deterministic tanh layers of 200 units each side, z of 50.
BURDA_HIDDEN = (200, 200)


@register_model("vae", "Burda et al. (2015) VAE: 784-200-200-z | z-200-200-784, tanh")
def vae(config: ModelConfig) -> MLPVAE:
    return MLPVAE(
        config, encoder_hidden=BURDA_HIDDEN, decoder_hidden=BURDA_HIDDEN, activation="tanh"
    )
