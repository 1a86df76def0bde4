"""One optimisation step of one model: eager, ``torch.compile``'d, or one CUDA graph.

Every form computes the same update — gather ``images[index]`` (uint8, resident on the
device) into a preallocated float buffer, forward, backward, optional gradient clipping,
Adam — and returns the batch's loss sums without a device sync:

* eager: plain PyTorch ops; the default on CPU and the reference the others are tested
  against. Fused Adam (``make_optimizer``) updates all parameters in one kernel.
* compiled (``TrainConfig.compile``): ``torch.compile`` of forward + loss, so inductor fuses
  the elementwise work of the loss and its backward; opt-in because compiling costs tens of
  seconds on a small CPU, more than it saves in a short run.
* CUDA graph (CUDA): the whole step is captured once per batch size and replayed
  (``vaelab.training.graphs``). The index, beta and label inputs live in static buffers; the
  random draws (reparameterisation, dynamic binarisation) use PyTorch's graph-safe Philox
  offsets, so every replay draws fresh noise; Adam runs with ``capturable=True``; bf16
  autocast runs with its cast cache off, as graphs require. The last, smaller batch of an
  epoch gets its own graph.

``TrainStep`` is the ``Step`` of a run of one model (``vaelab.training.epoch``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.device import resolve_precision
from vaelab.models import VAE
from vaelab.pixels import BINARIZERS
from vaelab.runs.checkpoint import global_rng_state
from vaelab.training.adam import adam_step
from vaelab.training.graphs import GraphedStep
from vaelab.training.lr_schedule import graph_safe_lr

__all__ = ["TrainStep", "adam_settings", "batch_sums", "make_optimizer"]


def adam_settings(config: TrainConfig) -> dict[str, Any]:
    """Adam's hyperparameters from a run's settings: every Adam of vaelab is built with these."""
    beta1, beta2 = config.adam_betas
    return {"lr": config.lr, "betas": (beta1, beta2), "eps": config.adam_eps}


def make_optimizer(model: VAE, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam; the fused kernel where this torch build has one for the device, else foreach."""
    settings = adam_settings(config)
    try:
        return torch.optim.Adam(model.parameters(), **settings, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), **settings, foreach=device.type != "cpu")


def batch_sums(loss: torch.Tensor, recon_nll: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """(loss summed over the batch, recon_nll summed, kl summed): what an epoch accumulates."""
    n = len(recon_nll)
    return torch.stack([loss.detach() * n, recon_nll.detach().sum(), kl.detach().sum()])


class _Buffers:
    """Preallocated inputs of one batch size: the gathered bytes, their float pixels, labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, size: int) -> None:
        device = images.device
        self.index = torch.zeros(size, dtype=torch.long, device=device)
        self.raw = torch.empty((size, *images.shape[1:]), dtype=images.dtype, device=device)
        self.pixels = torch.empty((size, 1, *images.shape[1:]), dtype=torch.float32, device=device)
        self.labels = None if labels is None else \
            torch.empty(size, dtype=labels.dtype, device=device)
        self.beta = torch.zeros((), dtype=torch.float32, device=device)


class TrainStep:
    """``step(index, kl_weights) -> (1, 3)``: one update of ``model`` on ``images[index]``.

    Build it once per (model, optimizer) and reuse it across epochs: it owns the input
    buffers, the compiled function and the CUDA graphs. ``graphs=None`` uses CUDA graphs on a
    CUDA device unless the environment variable ``VAELAB_CUDA_GRAPHS`` is ``0``; ``False``
    forces eager steps.
    """

    def __init__(
        self,
        model: VAE,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        graphs: bool | None = None,
    ) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config
        self.images, self.labels = images, labels
        self.device = images.device
        self.configs = [config]  # the Step protocol: one member
        self.seeds = [config.seed]  # its data order
        self.n_train = len(images)
        self.binarize = BINARIZERS[config.binarize]
        self.precision = resolve_precision(config.precision, self.device)
        if graphs is None:  # VAELAB_CUDA_GRAPHS=0: eager steps, for a model that cannot be captured
            graphs = os.environ.get("VAELAB_CUDA_GRAPHS", "1") != "0"
        self.use_graphs = self.device.type == "cuda" and graphs
        # Graph capture needs Adam's step counters on the device and `capturable=True`;
        # elsewhere the flag must be off (a checkpoint may carry either setting).
        for group in optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = self.use_graphs
        if self.use_graphs:
            graph_safe_lr(optimizer, config)
        self.adam_step = adam_step(optimizer)  # optimizer.step, minus its Python on the CPU
        self.train_model: Callable[..., Any] = model  # what the forward pass calls
        self.forward: Callable[..., tuple[torch.Tensor, torch.Tensor]] = self._forward
        if config.compile:
            # dynamic=False: one specialisation for the full batch and one for the last batch.
            # fallback_random: draw noise with PyTorch's own generator, as eager does, so a
            # compiled run reproduces and resumes exactly like an eager one.
            self.forward = torch.compile(self._forward, dynamic=False,
                                         options={"fallback_random": True})
        self._buffers: dict[int, _Buffers] = {}
        self._graphs: dict[int, GraphedStep] = {}

    # -- the math of one step ------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision != "bf16":
            return contextlib.nullcontext()
        # Graph replays must not depend on autocast's cache of cast weights.
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              cache_enabled=not self.use_graphs)

    def _forward(self, x: torch.Tensor, y: torch.Tensor | None, beta: float | torch.Tensor,
                 scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to differentiate, the batch sums)."""
        with self._autocast():
            out = self.train_model(x, y, beta=beta)
        loss = out.loss if scale == 1.0 else out.loss * scale
        return loss, batch_sums(out.loss, out.recon_nll, out.kl)

    def update(self, x: torch.Tensor, y: torch.Tensor | None, beta: float | torch.Tensor,
               scale: float = 1.0) -> torch.Tensor:
        """Forward, backward, clip, Adam on one batch; ``scale`` weights this batch's loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, sums = self.forward(x, y, beta, scale)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.adam_step()
        return sums

    def gather(
        self, buffers: _Buffers, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images[index] as float pixels (B, 1, H, W) in [0, 1] and their labels (None for
        unlabelled data)."""
        torch.index_select(self.images, 0, index, out=buffers.raw)
        x = buffers.pixels
        x.copy_(buffers.raw.unsqueeze(1))
        x.div_(255.0)  # the same arithmetic as pixels.to_float, so evaluation sees equal pixels
        if self.binarize is not None:
            x = self.binarize(x)
        if self.labels is None or buffers.labels is None:
            return x, None
        torch.index_select(self.labels, 0, index, out=buffers.labels)
        return x, buffers.labels

    def buffers_for(self, size: int) -> _Buffers:
        if size not in self._buffers:
            self._buffers[size] = _Buffers(self.images, self.labels, size)
        return self._buffers[size]

    # -- the Step protocol ---------------------------------------------------------------
    def __call__(self, index: torch.Tensor, kl_weights: Sequence[float]) -> torch.Tensor:
        """Train on ``images[index[0]]`` with KL weight ``kl_weights[0]``; the sums, (1, 3)."""
        rows = index[0] if index.dim() == 2 else index
        buffers = self.buffers_for(len(rows))
        if not self.use_graphs:
            x, y = self.gather(buffers, rows)
            return self.update(x, y, kl_weights[0]).unsqueeze(0)
        buffers.index.copy_(rows, non_blocking=True)
        buffers.beta.fill_(kl_weights[0])
        return self._graph_for(buffers)().unsqueeze(0)

    def _graph_for(self, buffers: _Buffers) -> GraphedStep:
        size = len(buffers.index)
        if size not in self._graphs:
            def body() -> torch.Tensor:
                x, y = self.gather(buffers, buffers.index)
                return self.update(x, y, buffers.beta)

            self._graphs[size] = GraphedStep(
                body, f"the training step of batch size {size}",
                before_capture=lambda: self.optimizer.zero_grad(set_to_none=True))
        return self._graphs[size]

    def member_model(self, member: int) -> VAE:
        return self.model

    def member_optimizer(self, member: int) -> torch.optim.Optimizer:
        return self.optimizer

    def member_rng(self, member: int) -> dict[str, torch.Tensor]:
        return global_rng_state()
