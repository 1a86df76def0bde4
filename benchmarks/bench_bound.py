"""How fast a training step could be on this machine: its own ops, replayed without its code.

Runs one step of each case as ``fit`` and ``fit_many`` train it on the CPU and records every op
it dispatches, with the very tensors it passed. Then times, in alternating rounds in this one
process: the whole step; every recorded op replayed back to back from a list (the step without
its model code: no modules, dataclasses or loops, only each op's own call), which shows what
that code adds; the matrix products alone (``mm``, ``addmm``, ``bmm``, ``baddbmm``); Adam alone
(``_foreach_add_``, ``_fused_adam_``). No step that runs these products and this Adam can be
faster than their sum at the rates this machine gives them, so the figures turn the speed
targets into questions this machine can answer:

* one model (mlp, batch 128): the best share of the matrix-product floor (the step's product
  FLOP at the rate of one large 2048 x 2048 product, measured in the same run) a step could
  reach, against the 65 % target;
* the study's stack (five ``seed`` models, batch 32): the best speed-up of stacking over the
  same five models trained one at a time (``fit``'s steps, timed in the same rounds), against
  2.2x, and the fewest minutes 100 epochs of its steps could take, against 45.

Usage:
  python benchmarks/bench_bound.py --dataset mnist
  python benchmarks/bench_bound.py --rounds 9 --steps 50 --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench_train import matmul_rate
from profile_step import ADAM_OPS, PRODUCT_OPS, single, stacked, train_data
from vaelab.cli.output import format_table

STUDY_EPOCHS, STUDY_MINUTES, SHARE_TARGET, STACKING_TARGET = 100, 45.0, 0.65, 2.2
STUDY_Z_DIMS = (1, 2, 5, 10, 20)


Call = tuple[Any, tuple[Any, ...], dict[str, Any]]


def _replay(calls: list[Call]) -> None:
    for func, args, kwargs in calls:
        func(*args, **kwargs)


@dataclass
class Recorded:
    """The ops of one step, with their arguments, to be called again."""

    ops: list[Call] = field(default_factory=list)  # every op, in order
    products: list[Call] = field(default_factory=list)
    adam: list[Call] = field(default_factory=list)
    flop: int = 0  # of the products

    def replay_ops(self) -> None:
        _replay(self.ops)

    def replay_products(self) -> None:
        _replay(self.products)

    def replay_adam(self) -> None:
        _replay(self.adam)


def _product_flop(name: str, args: tuple[Any, ...]) -> int:
    """2 m k n (times the batch of a batched product) of one product call."""
    a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
    return int(2 * math.prod(a.shape) * b.shape[-1])


class _Recorder(TorchDispatchMode):
    def __init__(self, into: Recorded) -> None:
        super().__init__()
        self.into = into

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        self.into.ops.append((func, args, kwargs))
        if name in PRODUCT_OPS:
            self.into.products.append((func, args, kwargs))
            self.into.flop += _product_flop(name, args)
        elif name in ADAM_OPS:
            self.into.adam.append((func, args, kwargs))
        return func(*args, **kwargs)


def record(step: Callable[[int], Any]) -> Recorded:
    """The ops of one call of ``step``."""
    recorded = Recorded()
    with _Recorder(recorded):
        step(0)
    return recorded


def timed_rounds(parts: dict[str, Callable[[], None]], steps: int,
                 rounds: int) -> dict[str, float]:
    """Milliseconds per call of each part: the median of ``rounds``, the parts alternating."""
    for part in parts.values():
        for _ in range(5):
            part()
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, part in parts.items():
            started = time.perf_counter()
            for _ in range(steps):
                part()
            times[name].append((time.perf_counter() - started) * 1e3 / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def _stepper(step: Callable[[int], Any]) -> Callable[[], None]:
    """``step`` on the next batch at each call."""
    counter = iter(range(10**9))
    return lambda: step(next(counter))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELAB_DATA"))
    parser.add_argument("--dataset", default="mnist-sample",
                        help="the study's 45-minute target is for mnist")
    parser.add_argument("--steps", type=int, default=100, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images, labels = train_data(args.dataset, args.data_dir)
    steps_per_epoch = math.ceil(len(images) / 32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.dataset} ({len(images)} training "
          f"images: {steps_per_epoch} study steps per epoch)", flush=True)
    rate = matmul_rate(torch.device("cpu"))
    mlp_step = single(images, labels, 128, "mlp", False)
    stack_step = stacked(images, 32, STUDY_Z_DIMS, False)
    alone = [_stepper(single(images, labels, 32, "seed", False, z)) for z in STUDY_Z_DIMS]

    def one_at_a_time() -> None:
        for step in alone:
            step()

    for i in range(10):  # past the first steps' allocations
        mlp_step(i)
        stack_step(i)
    mlp, stack = record(mlp_step), record(stack_step)
    ms = timed_rounds({"mlp": _stepper(mlp_step), "mlp ops": mlp.replay_ops,
                       "mlp products": mlp.replay_products, "mlp adam": mlp.replay_adam,
                       "stack": _stepper(stack_step), "stack ops": stack.replay_ops,
                       "stack products": stack.replay_products, "stack adam": stack.replay_adam,
                       "alone": one_at_a_time}, args.steps, args.rounds)
    rate_after = matmul_rate(torch.device("cpu"))
    print(f"a 2048^2 fp32 product: {rate:.0f} GFLOP/s before the steps, {rate_after:.0f} after")

    rows = []
    for name, key, recorded in (("mlp, batch 128 (one model)", "mlp", mlp),
                                ("study stack, batch 32 (five models)", "stack", stack)):
        bound = ms[f"{key} products"] + ms[f"{key} adam"]
        rows.append([name, f"{ms[key]:.2f}", f"{ms[f'{key} ops']:.2f}",
                     f"{ms[f'{key} products']:.2f}",
                     f"{recorded.flop / ms[f'{key} products'] / 1e6:.0f}",
                     f"{ms[f'{key} adam']:.2f}", f"{bound:.2f}"])
    rows.append(["the same five models one at a time (fit's steps)", f"{ms['alone']:.2f}",
                 "", "", "", "", ""])
    print(format_table(rows, ["ms per step", "whole step", "every op replayed",
                              "products alone", "their GFLOP/s", "Adam alone",
                              "products + Adam"]))

    floor = mlp.flop / rate / 1e6  # ms: the mlp step's product FLOP at the large product's rate
    print(f"\nmlp, batch 128: the floor is {floor:.2f} ms per step, a share of "
          f"{100 * SHARE_TARGET:.0f} % needs a step of {floor / SHARE_TARGET:.2f} ms. The step "
          f"reaches {100 * floor / ms['mlp']:.0f} %; its ops replayed from a list "
          f"{100 * floor / ms['mlp ops']:.0f} %; its products and Adam alone "
          f"{100 * floor / (ms['mlp products'] + ms['mlp adam']):.0f} %.")
    stack_bound = ms["stack products"] + ms["stack adam"]
    print(f"stacking: {ms['alone'] / ms['stack']:.2f}x the five models one at a time; a stacked "
          f"step of nothing but its products and Adam would be "
          f"{ms['alone'] / stack_bound:.2f}x (target {STACKING_TARGET}x).")
    allowed = STUDY_MINUTES * 60e3 / (STUDY_EPOCHS * steps_per_epoch)
    scope = "" if args.dataset == "mnist" else "; the target is for full MNIST"

    def minutes(step_ms: float) -> float:
        return step_ms * STUDY_EPOCHS * steps_per_epoch / 60e3

    print(f"study, {STUDY_EPOCHS} epochs of {steps_per_epoch} steps: "
          f"{minutes(ms['stack']):.0f} min of training steps; its ops replayed from a list "
          f"{minutes(ms['stack ops']):.0f} min; its products and Adam alone "
          f"{minutes(stack_bound):.0f} min (target {STUDY_MINUTES:.0f} min: a step of "
          f"{allowed:.1f} ms){scope}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
