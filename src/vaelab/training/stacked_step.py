"""The training step of a stacked batch of models, run from static buffers.

Every input the step reads lives in a tensor allocated once: the epoch's permutation, the
position in it, each model's noise and KL weight. On CUDA the whole step (batch gather, forward,
backward, gradient clipping, fused Adam) is captured once in a CUDA graph and replayed, so a step
costs one graph launch plus one noise draw per model; elsewhere (or with ``use_graph=False``)
the very same function runs eagerly.

Noise is drawn outside the graph from each model's own generator, in the order ``fit`` draws
it, so every model sees the numbers it would see alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vaelab.pixels import BINARIZERS, to_float
from vaelab.training.stacked import StackedMLP

__all__ = ["StackedStep"]

_WARMUP_STEPS = 3  # eager steps on a side stream before capture, as CUDA graphs require


class StackedStep:
    """One optimisation step of ``stacked`` on ``batch`` images taken from ``order[offset:]``."""

    def __init__(
        self,
        stacked: StackedMLP,
        optimizer: torch.optim.Optimizer,
        images: torch.Tensor,
        order: torch.Tensor,
        offset: torch.Tensor,
        batch: int,
        binarize: str = "none",
        grad_clip: float | None = None,
        precision: str = "fp32",
        use_graph: bool = False,
    ) -> None:
        device = images.device
        self.stacked, self.optimizer, self.images = stacked, optimizer, images
        self.order, self.offset, self.batch = order, offset, batch
        self.binarize = BINARIZERS[binarize]
        self.grad_clip = grad_clip
        self.use_graph = use_graph and device.type == "cuda"
        # Graph replays must not depend on autocast's cache of cast weights.
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                                       enabled=precision == "bf16",
                                       cache_enabled=not self.use_graph)
        self.noise = [torch.zeros(batch, z, device=device) for z in stacked.z_dims]
        self.kl_weights = torch.zeros(len(stacked.z_dims), device=device)
        self._weights_set: tuple[float, ...] = ()
        self.positions = torch.arange(batch, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.sums: torch.Tensor | None = None

    def _step(self) -> torch.Tensor:
        index = self.order.index_select(0, self.offset + self.positions)
        self.offset += self.batch
        x = to_float(self.images.index_select(0, index))
        if self.binarize is not None:
            x = self.binarize(x)
        z_max = self.stacked.z_max
        eps = torch.stack([F.pad(n, (0, z_max - n.shape[1])) for n in self.noise])
        with self.autocast:
            terms = self.stacked.terms(x, eps, self.kl_weights)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        if self.grad_clip is not None:
            self.stacked.clip_grad_norm_(self.grad_clip)
        self.optimizer.step()
        return terms.sums.float()

    def __call__(self, generators: Sequence[torch.Generator],
                 kl_weights: Sequence[float]) -> torch.Tensor:
        """Draw each model's noise, run the step; returns (M, 3) batch sums (loss, recon, kl)."""
        for buffer, generator in zip(self.noise, generators, strict=True):
            torch.randn(buffer.shape, generator=generator, out=buffer)
        if tuple(kl_weights) != self._weights_set:  # changes only during a KL warm-up
            self.kl_weights.copy_(torch.tensor(kl_weights, dtype=self.kl_weights.dtype))
            self._weights_set = tuple(kl_weights)
        if not self.use_graph:
            return self._step()
        if self.graph is None:
            self._capture()
        assert self.graph is not None and self.sums is not None
        self.graph.replay()
        return self.sums

    def _capture(self) -> None:
        """Warm up on a side stream, undo the warm-up's updates, then capture one step."""
        state = [t for entry in self.optimizer.state.values() for t in entry.values()
                 if torch.is_tensor(t)]
        saved = [t.detach().clone() for t in [*self.stacked.parameters(), *state, self.offset]]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_STEPS):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        self._restore(saved)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.sums = self._step()
        self.graph = graph

    def _restore(self, saved: list[torch.Tensor]) -> None:
        state = [t for entry in self.optimizer.state.values() for t in entry.values()
                 if torch.is_tensor(t)]
        with torch.no_grad():
            for target, value in zip([*self.stacked.parameters(), *state, self.offset], saved,
                                     strict=True):
                target.copy_(value)
