"""The conditional VAE (Sohn, Lee & Yan 2015): q(z | x, y) and p(x | z, y) with the label y given.

The label enters both networks as a one-hot vector concatenated to their input, so z is free to
carry what the label does not: the style of the digit (slant, stroke width). Decoding one z with
every label draws the same style in every class. Networks are Burda's (200-200, tanh). The
likelihood estimator scores log p(x | y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.errors import VaelabError
from vaelab.models.base import VAE, ModelConfig, eval_mode
from vaelab.models.mlp import BURDA_HIDDEN, linear_stack
from vaelab.models.registry import register_model

__all__ = ["ConditionalVAE", "digit_style_grid"]


class ConditionalVAE(VAE):
    """Encoder [x, onehot(y)] -> (mu, logvar); decoder [z, onehot(y)] -> pixel logits."""

    conditional = True

    def __init__(self, config: ModelConfig, hidden: tuple[int, ...] = BURDA_HIDDEN) -> None:
        super().__init__(config)
        classes, z_dim = config.num_classes, config.z_dim
        self.encoder = linear_stack([config.n_pixels + classes, *hidden], "tanh")
        self.to_posterior = nn.Linear(hidden[-1], 2 * z_dim)
        self.decoder = linear_stack([z_dim + classes, *hidden], "tanh")
        self.to_logits = nn.Linear(hidden[-1], config.n_pixels)

    def _one_hot(self, y: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if y is None:
            raise VaelabError("the cvae model is conditioned on the label; pass the digit labels "
                              "(e.g. `vaelab sample RUN_DIR --digit 7`)")
        return F.one_hot(y.long(), self.config.num_classes).to(like.dtype)

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(1)
        h = self.encoder(torch.cat([flat, self._one_hot(y, flat)], dim=1))
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.decoder(torch.cat([z, self._one_hot(y, z)], dim=1))
        logits: torch.Tensor = self.to_logits(h)
        return logits.view(-1, *self.config.image_shape)



@torch.no_grad()
def digit_style_grid(model: ConditionalVAE, styles: int, seed: int = 0) -> torch.Tensor:
    """Mean images (styles, classes, 1, H, W): row r decodes one prior draw z_r with every label."""
    classes = model.config.num_classes
    with eval_mode(model):
        z = model.sample_prior(styles, torch.Generator().manual_seed(seed))  # (styles, z_dim)
        labels = torch.arange(classes, device=z.device).repeat(styles)
        probs = model.decode_probs(z.repeat_interleave(classes, dim=0), labels)
    return probs.view(styles, classes, *model.config.image_shape)


@register_model("cvae", "conditional VAE (Sohn et al. 2015): label one-hot into both networks, "
                "Burda's layer sizes; `vaelab sample --digit`")
def cvae(config: ModelConfig) -> ConditionalVAE:
    return ConditionalVAE(config)
