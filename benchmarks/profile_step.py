"""Where the time of one training step goes: the one-model step and the stacked study step.

Profiles the steps ``fit`` and ``fit_many`` train with on the CPU (the written-out gradient of
``vaelab.training.stacked_grad``), or with ``--autograd`` the same steps with autograd's
backward. Runs each step under ``torch.profiler`` (CPU ops, with input shapes) and sorts the
ops' own time into: forward matrix products; backward products whose inner dimension is the
batch (the weight gradients, K = batch size); the other backward products (input gradients);
Adam; the loss's and activations' elementwise work; the data gather; and the rest (autograd
bookkeeping, small ops). What no op accounts for is Python and dispatch overhead. The padding
of the small z_dims to the largest (the stacked step computes every model at z_max) is counted
in FLOP.

Usage:
  python benchmarks/profile_step.py                   # mlp at batch 128, and the study's stack
  python benchmarks/profile_step.py --steps 100 --threads 1
  python benchmarks/profile_step.py --steps 100 --autograd
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from vaelab.cli.output import format_table
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.models import create_model
from vaelab.training.fit import fresh_step
from vaelab.training.stacked_step import StackedStep
from vaelab.training.step import TrainStep, make_optimizer

PRODUCT_OPS = ("mm", "addmm", "bmm", "baddbmm")  # the matrix products of a step, by aten name
ADAM_OPS = ("_foreach_add_", "_fused_adam_")  # Adam's two kernels (adam_step and Adam.step)
_PRODUCTS = {f"aten::{name}" for name in PRODUCT_OPS}
_ADAM = {f"aten::{name}" for name in ADAM_OPS} | {"Optimizer.step#Adam.step"}
_DATA = {"aten::index_select", "aten::div_"}
_ELEMENTWISE = {"aten::binary_cross_entropy_with_logits", "aten::log_sigmoid_forward",
                "aten::sigmoid", "aten::exp", "aten::sub", "aten::sub_", "aten::mul",
                "aten::mul_", "aten::add", "aten::add_", "aten::pow", "aten::sum", "aten::mean",
                "aten::clamp_min", "aten::relu", "aten::threshold_backward", "aten::neg",
                "aten::rsub", "aten::log_sigmoid_backward", "aten::sigmoid_backward",
                "aten::normal_", "aten::fill_", "aten::zero_", "aten::copy_",
                "aten::binary_cross_entropy_with_logits_backward", "aten::stack",
                "aten::addcmul", "aten::tanh_backward", "aten::tanh"}
_ORDER = ["forward products", "weight-gradient products (K = batch)",
          "input-gradient products", "Adam", "loss and activations (elementwise)",
          "data gather", "other ops", "Python and dispatch (no op)"]


def _category(name: str, shapes: list[Any], batch: int, backward: bool) -> str:
    if name in _PRODUCTS:
        # Forward products add the bias (addmm, baddbmm); the written-out backward's are bmm.
        if not backward and name not in ("aten::bmm", "aten::mm"):
            return "forward products"
        first = shapes[1] if name in ("aten::addmm", "aten::baddbmm") else shapes[0]
        inner = first[-1] if first else None
        return ("weight-gradient products (K = batch)" if inner == batch
                else "input-gradient products")
    if name in _ADAM:
        return "Adam"
    if name in _DATA:
        return "data gather"
    if name in _ELEMENTWISE:
        return "loss and activations (elementwise)"
    return "other ops"


def breakdown(step: Callable[[int], Any], steps: int, batch: int,
              rounds: int = 5) -> tuple[float, dict[str, float]]:
    """Wall ms per step (median of ``rounds``), and the ms of each category in it.

    Each op's own time comes from the profiler (which adds a little to every op); what the ops
    do not account for of the unprofiled wall time is Python and dispatch.
    """
    for i in range(10):
        step(i)
    walls = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(steps):
            step(i)
        walls.append((time.perf_counter() - started) * 1e3 / steps)
    wall = statistics.median(walls)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for i in range(steps):
            step(i)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.events():  # each op's own time, counted once
        category = _category(event.name, event.input_shapes, batch, _is_backward(event))
        totals[category] += event.self_cpu_time_total / 1e3 / steps
    totals["Python and dispatch (no op)"] = max(0.0, wall - sum(totals.values()))
    return wall, dict(totals)


def _is_backward(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if "Backward" in parent.name or "autograd::engine" in parent.name:
            return True
        parent = parent.cpu_parent
    return False


def train_data(dataset: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    splits = load_splits(dataset, data_dir)
    return torch.from_numpy(splits.train_images), torch.from_numpy(splits.train_labels).long()


def single(images: torch.Tensor, labels: torch.Tensor, batch: int, model: str,
           autograd: bool, z_dim: int = 20) -> Callable[[int], Any]:
    """The step ``fit`` trains one model with (``autograd``: ``TrainStep``, as before)."""
    config = TrainConfig(model=model, z_dim=z_dim, batch_size=batch, device="cpu")
    net = create_model(config.model_config())
    step: TrainStep | StackedStep
    if autograd:
        step = TrainStep(net, make_optimizer(net, config, torch.device("cpu")), config, images,
                         labels)
    else:
        step = fresh_step(net, config, images, labels)
    order = torch.randperm(len(images))
    per_epoch = len(images) // batch
    return lambda i: step(order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]
                          .unsqueeze(0), [1.0])


def stacked(images: torch.Tensor, batch: int, z_dims: tuple[int, ...],
            autograd: bool) -> Callable[[int], Any]:
    configs = [TrainConfig(model="seed", z_dim=z, batch_size=batch) for z in z_dims]
    models = [create_model(c.model_config()) for c in configs]
    rngs = [{"cpu": torch.Generator().manual_seed(k).get_state()} for k in range(len(models))]
    step = StackedStep(models, configs, images, rngs, [None] * len(models),
                       hand_gradient=False if autograd else None)
    order = torch.randperm(len(images))
    per_epoch = len(images) // batch
    weights = [1.0] * len(models)
    return lambda i: step(order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]
                          .unsqueeze(0), weights)


def padding_share(z_dims: tuple[int, ...]) -> float:
    """Share of the stacked seed step's matrix-product FLOP spent on padded latent units."""
    z_max = max(z_dims)

    def macs(z: int) -> int:  # seed network per image: encoder, posterior, decoder
        return 784 * 256 + 256 * 1024 + 1024 * 2 * z + z * 784 + 784 * 784

    real = sum(macs(z) for z in z_dims)
    return 1 - real / (len(z_dims) * macs(z_max))


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELAB_DATA"))
    parser.add_argument("--dataset", default="mnist-sample")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--autograd", action="store_true",
                        help="profile the steps with autograd's backward instead of the "
                             "written-out gradient")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images, labels = train_data(args.dataset, args.data_dir)
    grad = args.autograd
    cases = [("mlp, batch 128 (one model)", single(images, labels, 128, "mlp", grad), 128),
             ("study stack: seed z_dim 1,2,5,10,20, batch 32",
              stacked(images, 32, (1, 2, 5, 10, 20), grad), 32),
             ("seed z_dim 20, batch 32 (one model)",
              single(images, labels, 32, "seed", grad), 32)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.steps} profiled steps each, "
          f"{'autograd' if grad else 'written-out'} gradient")
    columns = {}
    for name, step, batch in cases:
        wall, parts = breakdown(step, args.steps, batch)
        columns[name] = (wall, parts)
        print(f"{name}: {wall:.2f} ms per step", flush=True)
    rows = []
    for category in _ORDER:
        row: list[Any] = [category]
        for wall, parts in columns.values():
            ms = parts.get(category, 0.0)
            row.append(f"{ms:.2f} ({100 * ms / wall:.0f} %)")
        rows.append(row)
    rows.append(["wall time per step", *[f"{wall:.2f}" for wall, _ in columns.values()]])
    print()
    print(format_table(rows, ["ms per step", *columns]))
    print(f"\npadding of the stacked step (every model at z_max = 20): "
          f"{100 * padding_share((1, 2, 5, 10, 20)):.1f} % of its matrix-product FLOP")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
