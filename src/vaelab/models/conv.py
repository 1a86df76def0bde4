"""A small convolutional VAE: two stride-2 convolutions down, two transposed convolutions up."""

from __future__ import annotations

import torch
from torch import nn

from vaelab.models.base import VAE, ModelConfig
from vaelab.models.registry import register_model

__all__ = ["ConvVAE"]


class ConvVAE(VAE):
    """28x28 -> 14x14x32 -> 7x7x64 -> 256 -> (mu, logvar); the decoder mirrors it."""

    def __init__(self, config: ModelConfig, channels: int = 32, hidden: int = 256) -> None:
        super().__init__(config)
        c_in, height, width = config.image_shape
        self.feature_shape = (2 * channels, height // 4, width // 4)
        n_features = 2 * channels * (height // 4) * (width // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c_in, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(n_features, hidden),
            nn.ReLU(),
        )
        self.to_posterior = nn.Linear(hidden, 2 * config.z_dim)
        self.from_latent = nn.Sequential(
            nn.Linear(config.z_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_features), nn.ReLU()
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, c_in, 4, stride=2, padding=1),
        )

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_posterior(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.from_latent(z).view(-1, *self.feature_shape)
        logits: torch.Tensor = self.decoder(h)
        return logits


@register_model("conv", "small convolutional VAE: 2 conv + 2 transposed conv layers, ReLU")
def conv(config: ModelConfig) -> ConvVAE:
    return ConvVAE(config)
