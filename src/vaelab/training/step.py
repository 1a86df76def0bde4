"""One optimisation step of ``train_epoch``: eager, ``torch.compile``'d, or one CUDA graph.

Every form computes the same update — gather ``images[index]`` (uint8, resident on the
device) into a preallocated float buffer, forward, backward, optional gradient clipping,
Adam, and the batch's loss sums — and adds the sums to the epoch accumulator without a
device sync:

* eager: plain PyTorch ops; the default on CPU and the reference the others are tested
  against. Fused Adam (``make_optimizer``) updates all parameters in one kernel.
* compiled (``TrainConfig.compile``): ``torch.compile`` of forward + loss, so inductor fuses
  the elementwise work of the loss and its backward; opt-in because compiling costs tens of
  seconds on a small CPU, more than it saves in a short run.
* CUDA graph (CUDA, single process): after a few eager warm-up steps on a side stream the
  whole step is captured once per batch size and replayed, one launch instead of ~100. The
  index, beta and label inputs live in static buffers; the random draws (reparameterisation,
  dynamic binarisation) use PyTorch's graph-safe Philox offsets, so every replay draws fresh
  noise; Adam runs with ``capturable=True``; bf16 autocast runs with its cast cache off, as
  graphs require. The last, smaller batch of an epoch gets its own graph.

Under ``torchrun`` (see ``vaelab.training.sharded``) the step wraps the model in
DistributedDataParallel and trains on this rank's rows of the global batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from vaelab.config import TrainConfig
from vaelab.models import VAE
from vaelab.pixels import BINARIZERS

if TYPE_CHECKING:
    from vaelab.training.sharded import Shard

__all__ = ["WARMUP_STEPS", "TrainStep", "batch_sums"]

log = logging.getLogger(__name__)

# Eager steps run per batch size before its CUDA graph is captured (allocator and cuBLAS warm-up).
WARMUP_STEPS = 3


def batch_sums(loss: torch.Tensor, recon_nll: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """(loss summed over the batch, recon_nll summed, kl summed): what an epoch accumulates."""
    n = len(recon_nll)
    return torch.stack([loss.detach() * n, recon_nll.detach().sum(), kl.detach().sum()])


class _Buffers:
    """Preallocated inputs of one batch size: the gathered bytes, their float pixels, labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int) -> None:
        device = images.device
        self.index = torch.zeros(size, dtype=torch.long, device=device)
        self.raw = torch.empty((size, *images.shape[1:]), dtype=images.dtype, device=device)
        self.pixels = torch.empty((size, 1, *images.shape[1:]), dtype=torch.float32, device=device)
        self.labels = torch.empty(size, dtype=labels.dtype, device=device)
        self.beta = torch.zeros((), dtype=torch.float32, device=device)


class TrainStep:
    """Callable ``step(index, beta, sums)``: one update on ``images[index]``, adds to ``sums``.

    Build it once per (model, optimizer) and reuse it across epochs: it owns the input
    buffers, the compiled function and the CUDA graphs. ``graphs=None`` uses CUDA graphs
    wherever they apply (a CUDA device, one process) unless the environment variable
    ``VAELAB_CUDA_GRAPHS`` is ``0``; ``False`` forces eager steps.
    """

    def __init__(
        self,
        model: VAE,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
        graphs: bool | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config
        self.images, self.labels = images, labels
        self.device = images.device
        self.shard = shard
        self.binarize = BINARIZERS[config.binarize]
        if graphs is None:  # VAELAB_CUDA_GRAPHS=0: eager steps, for a model that cannot be captured
            graphs = os.environ.get("VAELAB_CUDA_GRAPHS", "1") != "0"
        self.use_graphs = self.device.type == "cuda" and shard is None and graphs
        # Graph capture needs Adam's step counters on the device and `capturable=True`;
        # elsewhere the flag must be off (a checkpoint may carry either setting).
        for group in optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = self.use_graphs
        self.train_model: Callable[..., Any] = model if shard is None else shard.wrap(model)
        self.forward: Callable[..., Any] = self._forward
        if config.compile and shard is None:
            # dynamic=False: one specialisation for the full batch and one for the last batch.
            # fallback_random: draw noise with PyTorch's own generator, as eager does, so a
            # compiled run reproduces and resumes exactly like an eager one.
            self.forward = torch.compile(self._forward, dynamic=False,
                                         options={"fallback_random": True})
        self._buffers: dict[int, _Buffers] = {}
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._eager_steps: dict[int, int] = {}

    # -- the math of one step ------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.precision != "bf16":
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
        self.optimizer.zero_grad(set_to_none=True)
        loss, sums = self.forward(x, y, beta, scale)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return sums

    def gather(
        self, buffers: _Buffers, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images[index] as float pixels (B, 1, H, W) in [0, 1], written into the buffers."""
        torch.index_select(self.images, 0, index, out=buffers.raw)
        x = buffers.pixels
        x.copy_(buffers.raw.unsqueeze(1))
        x.div_(255.0)  # the same arithmetic as pixels.to_float, so evaluation sees equal pixels
        if self.binarize is not None:
            x = self.binarize(x)
        y = None
        if self.model.conditional:
            torch.index_select(self.labels, 0, index, out=buffers.labels)
            y = buffers.labels
        return x, y

    def buffers_for(self, size: int) -> _Buffers:
        if size not in self._buffers:
            self._buffers[size] = _Buffers(self.images, self.labels, size)
        return self._buffers[size]

    # -- entry point ---------------------------------------------------------------------
    def __call__(self, index: torch.Tensor, beta: float, sums: torch.Tensor) -> None:
        """Train on ``images[index]`` with KL weight ``beta``; add the batch sums to ``sums``."""
        size = len(index)
        if self.shard is not None:
            sums += self.shard.step(self, index, beta).to(sums.dtype)
            return
        buffers = self.buffers_for(size)
        if not self.use_graphs:
            x, y = self.gather(buffers, index)
            sums += self.update(x, y, beta).to(sums.dtype)
            return
        graph = self._graphs.get(size)
        buffers.index.copy_(index, non_blocking=True)
        buffers.beta.fill_(beta)
        if graph is None:
            done = self._eager_steps.get(size, 0)
            if done < WARMUP_STEPS:
                self._eager_steps[size] = done + 1
                with self._side_stream():
                    x, y = self.gather(buffers, buffers.index)
                    out = self.update(x, y, buffers.beta)
                sums += out.to(sums.dtype)
                return
            graph = self._capture(buffers)
        graph[0].replay()
        sums += graph[1].to(sums.dtype)

    @contextlib.contextmanager
    def _side_stream(self) -> Iterator[None]:
        # Warm-up on a side stream, as torch.cuda.graphs recommends before capture.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            yield
        torch.cuda.current_stream().wait_stream(stream)

    def _capture(self, buffers: _Buffers) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Record gather + forward + backward + Adam + sums once; replay it from then on."""
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            x, y = self.gather(buffers, buffers.index)
            out = self.update(x, y, buffers.beta)
        log.info("captured the training step of batch size %d in a CUDA graph", len(buffers.index))
        self._graphs[len(buffers.index)] = (graph, out)
        return graph, out
