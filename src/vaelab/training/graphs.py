"""Replaying a training step from a CUDA graph: warm up eagerly, capture once, replay.

The step is a function of static buffers (indices, KL weights, noise) that returns a tensor of
loss sums. Its first ``WARMUP_STEPS`` calls run eagerly on a side stream (cuBLAS and the caching
allocator settle, as ``torch.cuda.graphs`` requires) and are real training steps; the next call
captures the step into a graph and every call from then on replays it: one launch instead of
one per kernel. The returned tensor is the graph's static output, valid until the next call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import torch

__all__ = ["WARMUP_STEPS", "GraphedStep"]

log = logging.getLogger(__name__)

WARMUP_STEPS = 3


@contextlib.contextmanager
def _side_stream() -> Iterator[None]:
    stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream().wait_stream(stream)


class GraphedStep:
    """``body()`` run eagerly ``warmup`` times, then captured and replayed on every call.

    ``before_capture`` runs just before the capture (e.g. freeing gradients so the graph
    allocates its own). ``name`` only labels the log line.
    """

    def __init__(self, body: Callable[[], torch.Tensor], name: str,
                 before_capture: Callable[[], None] | None = None,
                 warmup: int = WARMUP_STEPS) -> None:
        self.body, self.name, self.before_capture = body, name, before_capture
        self.warmup, self.eager_calls = warmup, 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: torch.Tensor | None = None

    def __call__(self) -> torch.Tensor:
        if self.graph is None:
            if self.eager_calls < self.warmup:
                self.eager_calls += 1
                with _side_stream():
                    return self.body()
            self._capture()
        assert self.graph is not None and self.output is not None
        self.graph.replay()
        return self.output

    def _capture(self) -> None:
        if self.before_capture is not None:
            self.before_capture()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.output = self.body()
        self.graph = graph
        log.info("captured %s in a CUDA graph", self.name)
