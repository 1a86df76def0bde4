"""Several fully connected VAEs as one set of stacked parameters, trained in one step.

Model k of M keeps its own weights in slice k of every stacked tensor (M, out, in), and each
layer of all M models is one batched matrix product. Models with different ``z_dim`` are padded
to the largest one: the extra posterior units have zero weights and biases, draw no noise
(their epsilon is zero), and the extra decoder input columns are zero, so the padded units give
mu = logvar = z = 0, a KL of exactly 0 and gradients of exactly 0. Adam leaves a parameter
whose gradient and moments are zero where it is, so the padding stays zero and every model
follows the math it would follow alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vaelab.config import TrainConfig
from vaelab.losses import elbo_terms
from vaelab.models import VAE

__all__ = ["Layer", "StackedForward", "StackedMLP", "StackedTerms", "stacking_blocker"]


def stacking_blocker(model: VAE, config: TrainConfig, alone: bool = False) -> str | None:
    """Why ``model`` cannot be trained stacked (None when it can); ``alone``: as a stack of one."""
    from vaelab.models.mlp import MLPVAE

    if type(model) is not MLPVAE:
        return f"model {config.model!r} is not a plain fully connected VAE"
    if model.conditional or config.iw_samples != 1:
        return "conditional and importance-weighted objectives are trained one by one"
    if config.binarize == "dynamic" and not alone:
        return "dynamic binarisation draws a different batch per model"
    return None


@dataclass
class StackedTerms:
    """Loss terms of one batched step, one row per model."""

    total: torch.Tensor  # scalar: the sum over models of each model's batch-mean loss
    sums: torch.Tensor  # (M, 3): per model, batch sums of loss, recon_nll and kl (as fit keeps)


@dataclass
class StackedForward:
    """The activations of a stacked forward pass, (M, B, features) each."""

    pixels: torch.Tensor  # the input images, flat
    encoded: list[torch.Tensor]  # each encoder layer's output, after its activation
    posterior: torch.Tensor  # (mu, logvar) side by side
    mu: torch.Tensor
    logvar: torch.Tensor
    std: torch.Tensor  # exp(logvar / 2)
    z: torch.Tensor  # mu + eps * std
    decoded: list[torch.Tensor]  # each decoder hidden layer's output, after its activation
    logits: torch.Tensor  # the pixels' Bernoulli logits


@dataclass(frozen=True)
class Layer:
    """One Linear layer of a stack, by its module path, and the activation after it."""

    name: str  # module path in the single model, e.g. "encoder.0"
    activation: nn.Module | None  # elementwise module applied after it


def _chain(seq: nn.Sequential, prefix: str) -> list[Layer]:
    """The Linear layers of an MLP stack with the activation that follows each."""
    layers: list[Layer] = []
    for name, module in seq.named_children():
        if isinstance(module, nn.Linear):
            layers.append(Layer(f"{prefix}.{name}", None))
        else:
            layers[-1] = Layer(layers[-1].name, module)
    return layers


class StackedMLP:
    """M ``MLPVAE``s of one architecture (any z_dims) as stacked, padded leaf tensors."""

    def __init__(self, models: Sequence[VAE], device: torch.device) -> None:
        first: Any = models[0]
        self.z_dims = [m.z_dim for m in models]
        self.z_max = max(self.z_dims)
        self.image_shape = first.config.image_shape
        self.encoder = _chain(first.encoder, "encoder")
        self.decoder = _chain(first.decoder, "decoder")
        # z enters the decoder through its first layer (to_logits when there is no hidden one).
        self.first_decoder = self.decoder[0].name if self.decoder else "to_logits"
        self.names = [n for n, _ in first.named_parameters()]
        self.params: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for name in self.names:
                slices = [self.pad(name, dict(m.named_parameters())[name], z)
                          for m, z in zip(models, self.z_dims, strict=True)]
                self.params[name] = torch.stack(slices).to(device).requires_grad_(True)

    # -- layout: weights stored transposed (in, out), latent dimensions zero-padded ----------

    def _placement(self, name: str, z_dim: int,
                   device: torch.device) -> tuple[int, torch.Tensor] | None:
        """(dim, index) where a z_dim-sized tensor sits inside its stacked, padded layout."""
        if name == "to_posterior.weight" or name == "to_posterior.bias":
            rows = list(range(z_dim)) + list(range(self.z_max, self.z_max + z_dim))
            return (1 if name.endswith("weight") else 0), torch.tensor(rows, device=device)
        if name == f"{self.first_decoder}.weight":
            return 0, torch.arange(z_dim, device=device)
        return None

    def pad(self, name: str, value: torch.Tensor, z_dim: int) -> torch.Tensor:
        """One model's tensor in the stacked layout: a weight (out, in) becomes (in, out)."""
        value = value.detach()
        if name.endswith("weight"):
            # baddbmm(h, weight) then needs no transpose, and the weight gradient comes out
            # contiguous in the same layout.
            value = value.t()
        place = self._placement(name, z_dim, value.device)
        if place is None:
            return value.contiguous().clone()
        dim, index = place
        shape = list(value.shape)
        shape[dim] = 2 * self.z_max if name.startswith("to_posterior") else self.z_max
        return value.new_zeros(shape).index_copy_(dim, index, value.contiguous())

    def unpad(self, name: str, value: torch.Tensor, z_dim: int) -> torch.Tensor:
        """The inverse of ``pad``: one model's slice back in the model's own layout."""
        place = self._placement(name, z_dim, value.device)
        if place is not None:
            dim, index = place
            value = value.index_select(dim, index)
        return value.t() if name.endswith("weight") else value

    # -- the math ------------------------------------------------------------------------------

    def parameters(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    def _linear(self, h: torch.Tensor, name: str) -> torch.Tensor:
        weight, bias = self.params[f"{name}.weight"], self.params[f"{name}.bias"]
        # h (M, B, in), weight (M, in, out) -> (M, B, out)
        return torch.baddbmm(bias.unsqueeze(1), h, weight)

    def _run(self, h: torch.Tensor, layers: list[Layer],
             outputs: list[torch.Tensor]) -> torch.Tensor:
        for layer in layers:
            h = self._linear(h, layer.name)
            if layer.activation is not None:
                h = layer.activation(h)
            outputs.append(h)
        return h

    def forward(self, x: torch.Tensor, eps: torch.Tensor,
                groups: torch.Tensor | None = None) -> StackedForward:
        """Every model's forward pass on its batch, with what a backward pass needs.

        x (B, 1, H, W) in [0, 1], shared by all models, or (G, B, 1, H, W): G batches, model k
        reading batch ``groups[k]`` (models trained with different seeds see different data
        orders); eps (M, B, z_max) the reparameterisation noise, zero beyond each model's z_dim.
        """
        n_models, batch = len(self.z_dims), x.shape[-4]
        flat = x.flatten(-3)  # (B, D) or (G, B, D)
        if groups is None:
            pixels = flat.unsqueeze(0).expand(n_models, batch, -1)
        else:
            pixels = flat.index_select(0, groups)
        encoded: list[torch.Tensor] = []
        h = self._run(pixels, self.encoder, encoded)
        posterior = self._linear(h, "to_posterior")
        mu, logvar = posterior.chunk(2, dim=2)
        std = torch.exp(0.5 * logvar)
        z = mu + eps * std
        decoded: list[torch.Tensor] = []
        logits = self._linear(self._run(z, self.decoder, decoded), "to_logits")
        return StackedForward(pixels, encoded, posterior, mu, logvar, std, z, decoded, logits)

    def terms(self, x: torch.Tensor, eps: torch.Tensor, kl_weights: torch.Tensor,
              groups: torch.Tensor | None = None) -> StackedTerms:
        """Negative ELBO of every model on its batch (the arguments as in ``forward``).

        kl_weights (M,) each model's beta for this step.
        """
        return self.loss(self.forward(x, eps, groups), kl_weights)

    @staticmethod
    def loss(forward: StackedForward, kl_weights: torch.Tensor) -> StackedTerms:
        """The loss terms of a forward pass; kl_weights (M,) each model's beta."""
        batch = forward.logits.shape[1]
        # The same per-image terms as a single model's forward, one row per model.
        terms = elbo_terms(forward.logits, forward.pixels, forward.mu, forward.logvar,
                           kl_weights.unsqueeze(1), batch_dims=2)
        loss = terms.loss.mean(1)
        sums = torch.stack([loss * batch, terms.recon_nll.sum(1), terms.kl.sum(1)], dim=1)
        return StackedTerms(loss.sum(), sums.detach())

    def clip_grad_norm_(self, max_norm: float) -> None:
        """Each model's gradient scaled as torch.nn.utils.clip_grad_norm_ would scale it alone."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1)  # (M, tensors)
        scale = (max_norm / (norms.norm(dim=1) + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))

    # -- to and from single models -------------------------------------------------------------

    @torch.no_grad()
    def copy_to(self, index: int, model: VAE) -> None:
        """Write model ``index``'s weights into a single (unpadded) model."""
        z_dim = self.z_dims[index]
        for name, param in model.named_parameters():
            param.copy_(self.unpad(name, self.params[name][index], z_dim))

    def optimizer_state(self, optimizer: torch.optim.Optimizer,
                        index: int) -> dict[int, dict[str, Any]]:
        """Model ``index``'s part of the stacked Adam state, keyed as its own Adam numbers it."""
        z_dim = self.z_dims[index]
        state: dict[int, dict[str, Any]] = {}
        for number, name in enumerate(self.names):
            entry = optimizer.state.get(self.params[name], {})
            if entry:
                state[number] = {"step": entry["step"].detach().clone()}
                for key in ("exp_avg", "exp_avg_sq"):
                    mine = self.unpad(name, entry[key][index], z_dim)
                    state[number][key] = mine.clone(memory_format=torch.contiguous_format)
        return state

    def load_optimizer_states(self, optimizer: torch.optim.Optimizer,
                              states: Sequence[dict[int, dict[str, Any]] | None]) -> None:
        """Fill the stacked Adam from each model's own state (None: a fresh Adam)."""
        steps = {float(entry["step"]) for s in states if s for entry in s.values()}
        steps |= {0.0} if any(not s for s in states) else set()
        if len(steps) > 1:
            raise ValueError(f"models at different Adam steps {sorted(steps)} cannot be stacked")
        step = steps.pop() if steps else 0.0
        packed: dict[int, dict[str, Any]] = {}
        for number, name in enumerate(self.names):
            param = self.params[name]
            moments = {}
            for key in ("exp_avg", "exp_avg_sq"):
                slices = []
                for k, s in enumerate(states):
                    if s and number in s:
                        value = s[number][key].to(param.device)
                        slices.append(self.pad(name, value, self.z_dims[k]))
                    else:
                        slices.append(torch.zeros_like(param[k]))
                moments[key] = torch.stack(slices)
            packed[number] = {"step": torch.tensor(step, dtype=torch.float32), **moments}
        groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": packed, "param_groups": groups})
