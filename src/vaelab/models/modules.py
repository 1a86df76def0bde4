"""A VAE from two plain modules, as pythae takes them: an encoder and a decoder.

``from_modules(encoder, decoder, config)`` wraps an encoder x (B, 1, 28, 28) -> (mu, logvar),
each (B, z_dim), and a decoder z (B, z_dim) -> Bernoulli logits (B, 1, 28, 28) into a
``VAE``: the reparameterisation, the loss, the likelihood estimator, samples and every picture
come from the base class. ``config`` is the ``ModelConfig`` a registered builder receives;
its ``z_dim`` (``--z-dim``) is the latent size the two modules must agree with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vaelab.errors import VaelabError
from vaelab.models.base import VAE, ModelConfig

__all__ = ["ModulesVAE", "from_modules"]


def _shown(value: Any) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


class ModulesVAE(VAE):
    """``encoder`` and ``decoder`` as given; everything else is the base VAE's."""

    def __init__(self, config: ModelConfig, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.decoder = decoder

    def part_name(self, method: str) -> str:
        """Who to name when ``method`` breaks the contract: the user's module, not this class."""
        part = self.encoder if method == "encode" else self.decoder
        role = "encoder" if method == "encode" else "decoder"
        return f"{type(part).__name__} (the {role})"

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(x)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise VaelabError(f"{self.part_name('encode')} returned {_shown(out)}; expected a "
                              f"pair (mu, logvar), each of shape ({len(x)}, {self.z_dim})")
        mu, logvar = out
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        logits: torch.Tensor = self.decoder(z)
        return logits


def from_modules(encoder: nn.Module, decoder: nn.Module, config: ModelConfig) -> VAE:
    """A VAE of ``encoder`` x -> (mu, logvar) and ``decoder`` z -> logits, for ``config``."""
    for role, part in (("encoder", encoder), ("decoder", decoder)):
        if not isinstance(part, nn.Module):
            raise VaelabError(f"from_modules: the {role} is a {type(part).__name__}; expected "
                              "a torch.nn.Module")
    if not isinstance(config, ModelConfig):
        raise VaelabError(f"from_modules: config is a {type(config).__name__}; pass the "
                          "ModelConfig your registered builder receives")
    return ModulesVAE(config, encoder, decoder)
