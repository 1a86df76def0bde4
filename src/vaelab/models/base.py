"""The VAE interface every architecture implements (Kingma & Welling 2014).

``encode`` gives the Gaussian posterior q(z | x), ``reparameterize`` draws z from it with the
reparameterisation trick, ``decode`` gives Bernoulli logits of p(x | z), and ``forward`` returns
all of them with the loss terms. Images are float tensors (B, 1, 28, 28) with values in [0, 1].
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import nn

from vaelab.config import ModelConfig
from vaelab.losses import LossTerms, bernoulli_nll, elbo_terms, log_normal, log_standard_normal

__all__ = ["VAE", "ModelConfig", "VAEOutput", "eval_mode"]


class VAEOutput(NamedTuple):
    """What ``forward`` returns; the loss terms are per image, shape (B,)."""

    logits: torch.Tensor  # (B, 1, 28, 28) Bernoulli logits of p(x | z)
    mu: torch.Tensor  # (B, z_dim) posterior mean
    logvar: torch.Tensor  # (B, z_dim) posterior log-variance
    z: torch.Tensor  # (B, z_dim) the sample that was decoded
    loss: torch.Tensor  # scalar: batch mean of recon_nll + beta * kl, what training minimises
    recon_nll: torch.Tensor  # (B,) -log p(x | z) in nats
    kl: torch.Tensor  # (B,) KL(q(z | x) || p(z)) in nats


def _takes_one_input(method: Callable[..., Any]) -> bool:
    """Whether ``method(self, x)`` has room for no second argument (the label)."""
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    return len(positional) == 1 and not variadic


def _ignoring_label(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def adapted(self: VAE, first: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        return method(self, first)

    return adapted


class VAE(nn.Module):
    """Base class: subclasses build ``encoder``/``decoder`` pieces and implement the two maps.

    vaelab calls ``encode(x, y)`` and ``decode(z, y)``; a model that is not conditional may
    write them as ``encode(self, x)`` and ``decode(self, z)``, and the label is left out.
    """

    conditional = False  # True when encode/decode take the label y

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.conditional:
            return
        for name in ("encode", "decode"):
            method = cls.__dict__.get(name)
            if callable(method) and _takes_one_input(method):
                setattr(cls, name, _ignoring_label(method))

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) -> mu, logvar, each (B, z_dim); ``y`` is the label (conditional
        models need it, the others ignore it)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z_dim) -> Bernoulli logits (B, 1, 28, 28); ``y`` as in ``encode``."""
        raise NotImplementedError

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws from the prior p(z) = N(0, I), on the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.z_dim, generator=generator).to(device)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last dimension; N(0, I) unless a model overrides it."""
        return log_standard_normal(z)

    def importance_log_weights(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x, z_j) - log q(z_j | x) for k draws z_j ~ q(z | x), shape (k, B).

        The likelihood estimator averages their exponentials. This default
        serves every model with one Gaussian latent; hierarchical models override it.
        """
        mu, logvar = self.encode(x, y)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # (k, B, z_dim)
        logits = self.decode(z.flatten(0, 1), None if y is None else y.repeat(k))
        log_px = -bernoulli_nll(logits, x.repeat(k, *([1] * (x.dim() - 1)))).view(k, -1)
        return log_px + self.log_prior(z) - log_normal(z, mu, logvar)

    def decode_probs(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean image sigmoid(decode(z, y)), values in [0, 1]."""
        return torch.sigmoid(self.decode(z, y))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2)."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def loss_terms(
        self,
        x: torch.Tensor,
        logits: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        z: torch.Tensor,
        beta: float | torch.Tensor,
    ) -> LossTerms:
        """Per-image loss; models with another prior or objective override this."""
        return elbo_terms(logits, x, mu, logvar, beta)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float | torch.Tensor = 1.0
    ) -> VAEOutput:
        """The loss terms of one batch; ``beta`` weights the KL term (1 is the ELBO)."""
        mu, logvar = self.encode(x, y)
        z = self.reparameterize(mu, logvar)
        logits = self.decode(z, y)
        terms = self.loss_terms(x, logits, mu, logvar, z, beta)
        return VAEOutput(logits, mu, logvar, z, terms.loss.mean(), terms.recon_nll, terms.kl)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode inside the block; the model's previous train/eval mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
