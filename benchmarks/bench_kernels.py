"""The pieces of the study's stacked step, each timed on one and on two threads.

What the stacked training step of the study (five `seed` models, batch 32) is made of: its
largest forward product and weight gradient (5 x 32 x 784 x 784), fused Adam over its 5.7
million parameters, the machine's memory bandwidth (an in-place add over the same size), two
Adams in two threads, and the first encoder layer of all five models as one wider product
(32 x 784 x 1280) instead of five (5 x 32 x 784 x 256). Milliseconds, median of rounds.

Usage:
  python benchmarks/bench_kernels.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from vaelab.cli.output import format_table

MODELS, BATCH = 5, 32
# The stacked seed network's parameter tensors: (models, in, out) weights and their biases.
STACKED_SHAPES = [(5, 784, 256), (5, 1, 256), (5, 256, 1024), (5, 1, 1024), (5, 1024, 40),
                  (5, 1, 40), (5, 20, 784), (5, 1, 784), (5, 784, 784), (5, 1, 784)]


def timed(fn: Callable[[], Any], calls: int = 100, rounds: int = 5) -> float:
    """Milliseconds per call, median of ``rounds`` after a warm-up."""
    for _ in range(10):
        fn()
    per_round = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        per_round.append((time.perf_counter() - started) * 1e3 / calls)
    return statistics.median(per_round)


def _adam(shapes: list[tuple[int, ...]]) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    return torch.optim.Adam(params, lr=1e-3, fused=True)


def cases() -> list[tuple[str, Callable[[], Any]]]:
    h = torch.randn(MODELS, BATCH, 784)
    weight = torch.randn(MODELS, 784, 784)
    bias = torch.randn(MODELS, 1, 784)
    grad = torch.randn(MODELS, BATCH, 784)
    n = sum(torch.Size(s).numel() for s in STACKED_SHAPES)
    a, b = torch.randn(n), torch.randn(n)
    adam = _adam(STACKED_SHAPES)
    first, rest = _adam(STACKED_SHAPES[8:] + STACKED_SHAPES[1:2]), _adam(
        STACKED_SHAPES[:1] + STACKED_SHAPES[2:8])
    pool = ThreadPoolExecutor(1)

    def two_adams() -> None:
        pending = pool.submit(first.step)
        rest.step()
        pending.result()

    x = torch.randn(BATCH, 784)
    stacked_x = x.unsqueeze(0).expand(MODELS, BATCH, 784)
    w1, b1, g1 = torch.randn(MODELS, 784, 256), torch.randn(MODELS, 1, 256), \
        torch.randn(MODELS, BATCH, 256)
    wide_w, wide_b, wide_g = torch.randn(784, MODELS * 256), torch.randn(MODELS * 256), \
        torch.randn(BATCH, MODELS * 256)
    return [
        ("forward product 5 x 32 x 784 x 784 (baddbmm)", lambda: torch.baddbmm(bias, h, weight)),
        ("its weight gradient (K = 32, bmm)", lambda: torch.bmm(h.transpose(1, 2), grad)),
        (f"fused Adam, {n / 1e6:.1f} M parameters", adam.step),
        ("the same as two Adams in two threads", two_adams),
        (f"in-place add over {n / 1e6:.1f} M floats", lambda: a.add_(b)),
        ("first layer, five products: forward", lambda: torch.baddbmm(b1, stacked_x, w1)),
        ("first layer, one wide product: forward", lambda: torch.addmm(wide_b, x, wide_w)),
        ("first layer, five products: weight gradient",
         lambda: torch.bmm(stacked_x.transpose(1, 2), g1)),
        ("first layer, one wide product: weight gradient", lambda: torch.mm(x.t(), wide_g)),
    ]


def main() -> int:
    rows: dict[str, list[Any]] = {}
    threads = (1, 2)
    for count in threads:
        torch.set_num_threads(count)
        for name, fn in cases():
            rows.setdefault(name, [name]).append(f"{timed(fn):.3f}")
    n = sum(torch.Size(s).numel() for s in STACKED_SHAPES)
    for count in threads:  # memory traffic of the add: two reads and one write of n floats
        index = threads.index(count) + 1
        row = rows[f"in-place add over {n / 1e6:.1f} M floats"]
        row[index] = f"{row[index]} ({3 * 4 * n / float(row[index]) / 1e6:.0f} GB/s)"
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(format_table(list(rows.values()), ["ms per call", "1 thread", "2 threads"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
