"""Seconds per epoch of a z_dim sweep: ``fit_many`` (stacked) against ``fit`` called per config.

Both train the same configs (default: the study's sweep — the ``seed`` network, z_dim 1, 2, 5,
10, 20, batch 32, Adam 1e-3, one seed) in this one process, on the same data, writing ordinary
run directories (checkpoints every epoch, validation every epoch; no pictures) into a temp
folder. The sequential reference is what ``vaelab study`` does without batching: one ``fit``
call per z_dim. The table gives wall-clock seconds per epoch for all models together (data
loading included, so short runs overstate it slightly) and the CPU seconds this process used
per epoch (less sensitive to other work on a shared machine), the ratio, and the agreement of the
final validation losses (the stacked models follow the same updates as the separate ones).
From the stacked figure it extrapolates the whole default study (100 epochs) on this device.

The order alternates (stacked first, then sequential, or ``--order sequential-first``); on a
machine shared with other work both are slowed, so the load average is printed with the table.

Usage:
  python benchmarks/bench_sweep.py                           # mnist-sample, 2 epochs, CPU
  python benchmarks/bench_sweep.py --dataset mnist --epochs 2
  python benchmarks/bench_sweep.py --device cuda --epochs 3  # CUDA: the step is a CUDA graph
  python benchmarks/bench_sweep.py --skip-sequential --epochs 5
  python benchmarks/bench_sweep.py --drift-steps 300 --model mlp --z-dims 2,5

``--steps N`` times only the training step (no evaluation, checkpoints or data loading): N
stacked steps against N steps of each model alone (the step fit trains one model with: on the
CPU in fp32 a stack of one with the written-out gradient), and both again with autograd's
backward (the stack without its written-out gradient; ``TrainStep``), alternating in rounds,
with the CPU seconds of this process beside the wall clock; from it the epoch and the default
study on full MNIST (55,000 training images) are extrapolated.

``--drift-steps N`` measures instead how far N steps of rounding-level differences carry: each
model trained alone with 2 threads, alone with 1 thread (a different summation order in the
matrix products), and stacked, all on the same batches and noise; it prints the relative
distance of the weights and the loss on 1,000 validation images. Any change of summation order
makes long trajectories drift apart (Adam amplifies rounding on near-zero gradients), so
stacked-vs-alone is to be read against alone-vs-alone.
Data: --dataset mnist reads full MNIST from --data-dir or $VAELAB_DATA.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vaelab.cli.output import format_table
from vaelab.config import TrainConfig
from vaelab.device import resolve_device
from vaelab.training import FitResult, RunOptions, fit, fit_many

STUDY_EPOCHS = 100  # the default study's epoch count, for the extrapolation


def _configs(args: argparse.Namespace, root: Path) -> list[TrainConfig]:
    return [TrainConfig(model=args.model, z_dim=z, dataset=args.dataset, data_dir=args.data_dir,
                        epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed,
                        device=args.device, out=str(root / f"z{z}"))
            for z in args.z_dims]


def _timed(run: Any) -> tuple[float, float, list[FitResult]]:
    """Wall-clock seconds, this process's CPU seconds, and the results."""
    started, cpu = time.perf_counter(), time.process_time()
    results = run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - cpu, results


def _step_timing(args: argparse.Namespace) -> int:
    from vaelab.data import load_splits
    from vaelab.models import create_model
    from vaelab.training.fit import fresh_step
    from vaelab.training.stacked_step import StackedStep
    from vaelab.training.step import TrainStep, make_optimizer

    device = resolve_device(args.device)
    splits = load_splits(args.dataset, args.data_dir)
    images = torch.from_numpy(splits.train_images).to(device)
    labels = torch.from_numpy(splits.train_labels).long().to(device)
    batch, steps = args.batch_size, args.steps
    configs = [TrainConfig(model=args.model, z_dim=z, batch_size=batch, seed=args.seed,
                           device=args.device) for z in args.z_dims]
    models = [create_model(c.model_config()).to(device) for c in configs]
    rngs = [{"cpu": torch.Generator().manual_seed(i).get_state()} for i in range(len(models))]
    # fit's step for each model alone: on the CPU in fp32 a stack of one with the written-out
    # gradient, elsewhere TrainStep; and TrainStep (autograd) for comparison.
    alone_steps = [fresh_step(m, c, images, labels, rng)
                   for m, c, rng in zip(models, configs, rngs, strict=True)]
    plain = [create_model(c.model_config()).to(device) for c in configs]
    autograd_steps = [TrainStep(m, make_optimizer(m, c, device), c, images, labels)
                      for m, c in zip(plain, configs, strict=True)]
    copies = [create_model(c.model_config()).to(device) for c in configs]
    step_fn = StackedStep(copies, configs, images, rngs, [None] * len(models))
    copies = [create_model(c.model_config()).to(device) for c in configs]
    autograd_stack = StackedStep(copies, configs, images, rngs, [None] * len(models),
                                 hand_gradient=False)
    order = torch.randperm(len(images), device=device)
    batches = [order[start:start + batch].unsqueeze(0)
               for start in ((s * batch) % (len(images) - batch) for s in range(steps))]
    weights = [1.0] * len(models)

    def stacked(step: Any) -> None:
        for index in batches:
            step(index, weights)

    def one_at_a_time(steps: list[Any]) -> None:
        for step in steps:  # one model after another
            for index in batches:
                step(index, weights[:1])

    runs = {"stacked": lambda: stacked(step_fn),
            "stacked, autograd": lambda: stacked(autograd_stack),
            "alone": lambda: one_at_a_time(alone_steps),
            "alone, autograd": lambda: one_at_a_time(autograd_steps)}
    totals = {label: [0.0, 0.0] for label in runs}
    for _ in range(args.rounds):
        for label, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            totals[label][0] += time.perf_counter() - wall
            totals[label][1] += time.process_time() - cpu
    per_epoch = -(-55_000 // batch)  # steps per epoch of full MNIST (5,000 held out)
    rows = []
    for label, (wall, cpu) in totals.items():
        ms = 1000 * wall / (steps * args.rounds)
        rows.append([label, f"{ms:.1f}", f"{1000 * cpu / (steps * args.rounds):.1f}",
                     f"{ms * per_epoch / 1000:.1f}", f"{ms * per_epoch * STUDY_EPOCHS / 60e3:.0f}"])
    print(f"\ntraining step only, {len(models)} models {args.model} z_dim {args.z_dims}, "
          f"batch {batch}, {steps} steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(format_table(rows, ["path", "wall ms / step (all models)", "CPU ms / step",
                              "s / epoch (full MNIST)", f"min / {STUDY_EPOCHS} epochs"]))
    print(f"speed-up of the stacked step: {totals['alone'][0] / totals['stacked'][0]:.2f}x "
          f"against fit's step alone, "
          f"{totals['alone, autograd'][0] / totals['stacked'][0]:.2f}x against TrainStep "
          f"(autograd) alone; load average (1 min): {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    return 0


def _drift(args: argparse.Namespace) -> int:
    from vaelab.data import load_splits
    from vaelab.models import create_model
    from vaelab.pixels import to_float
    from vaelab.training.stacked_step import StackedStep

    splits = load_splits(args.dataset, args.data_dir)
    images = torch.from_numpy(splits.train_images)
    val = to_float(torch.from_numpy(splits.val_images[:1000]))
    steps, batch = args.drift_steps, args.batch_size
    laps = -(-steps * batch // len(images))
    order = torch.cat([torch.randperm(len(images), generator=torch.Generator().manual_seed(e))
                       for e in range(laps)])

    def fresh() -> list[tuple[Any, torch.Tensor]]:
        built = []
        for z in args.z_dims:
            torch.manual_seed(args.seed)
            model = create_model(name=args.model, z_dim=z)
            built.append((model, torch.get_rng_state()))
        return built

    def alone(threads: int) -> list[Any]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        models = []
        for model, rng in fresh():
            torch.set_rng_state(rng)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
            for step in range(steps):
                x = to_float(images[order[step * batch:(step + 1) * batch]])
                out = model(x)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                optimizer.step()
            models.append(model)
        torch.set_num_threads(before)
        return models

    def stacked() -> list[Any]:
        built = fresh()
        models = [m for m, _ in built]
        configs = [TrainConfig(model=args.model, z_dim=z, batch_size=batch, seed=args.seed)
                   for z in args.z_dims]
        step_fn = StackedStep(models, configs, images, [{"cpu": rng} for _, rng in built],
                              [None] * len(models))
        for step in range(steps):
            step_fn(order[step * batch:(step + 1) * batch].unsqueeze(0), [1.0] * len(models))
        return [step_fn.member_model(index) for index in range(len(models))]

    def distance(a: Any, b: Any) -> float:
        return max(float((pa - pb).detach().norm() / pa.detach().norm())
                   for pa, pb in zip(a.parameters(), b.parameters(), strict=True))

    @torch.no_grad()
    def val_loss(model: Any) -> float:
        torch.manual_seed(0)
        return float(model(val).loss)

    two, one, many = alone(2), alone(1), stacked()
    rows = [[z, f"{distance(a, b):.1e}", f"{distance(a, c):.1e}", val_loss(a), val_loss(b),
             val_loss(c)]
            for z, a, b, c in zip(args.z_dims, two, one, many, strict=True)]
    print(f"\ndrift after {steps} steps, model {args.model}, batch {batch}, {args.dataset}")
    print(format_table(rows, ["z_dim", "alone 2 vs 1 thread", "alone vs stacked",
                              "val loss alone", "alone 1 thread", "stacked"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-sample", help="mnist-sample or mnist")
    parser.add_argument("--data-dir", default=os.environ.get("VAELAB_DATA"))
    parser.add_argument("--model", default="seed")
    parser.add_argument("--z-dims", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 2, 5, 10, 20])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--order", default="stacked-first",
                        choices=("stacked-first", "sequential-first"))
    parser.add_argument("--skip-sequential", action="store_true",
                        help="time only the stacked sweep")
    parser.add_argument("--no-cuda-graph", action="store_true", help="run the CUDA step eagerly")
    parser.add_argument("--drift-steps", type=int, default=0,
                        help="measure rounding drift over this many steps instead of timing")
    parser.add_argument("--steps", type=int, default=0,
                        help="time only this many training steps per round instead")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --steps")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.drift_steps:
        return _drift(args)
    if args.steps:
        return _step_timing(args)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} threads")
    print(f"device: {name}; torch {torch.__version__}; CUDA available: "
          f"{torch.cuda.is_available()}", file=sys.stderr)
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        root = Path(tmp)

        def stacked() -> list[FitResult]:
            if args.no_cuda_graph:
                os.environ["VAELAB_CUDA_GRAPHS"] = "0"
            return fit_many(_configs(args, root / "stacked"), RunOptions(pictures=False))

        def sequential() -> list[FitResult]:
            return [fit(c, RunOptions(pictures=False)) for c in _configs(args, root / "sequential")]

        plan = [("stacked (fit_many)", stacked)]
        if not args.skip_sequential:
            plan.append(("sequential (fit per z_dim)", sequential))
            if args.order == "sequential-first":
                plan.reverse()
        timings: dict[str, tuple[float, float, list[FitResult]]] = {}
        for label, run in plan:
            print(f"running {label} ...", file=sys.stderr)
            timings[label] = _timed(run)

    n_models, epochs = len(args.z_dims), args.epochs
    rows = []
    for label, (seconds, cpu, _) in timings.items():
        rows.append([label, n_models, epochs, seconds, seconds / epochs, cpu / epochs])
    print(f"\nz_dim sweep {args.z_dims}, model {args.model}, batch {args.batch_size}, "
          f"{args.dataset}, {epochs} epochs, device {name}")
    print(format_table(rows, ["path", "models", "epochs", "seconds", "s / epoch (all models)",
                              "CPU s / epoch"]))
    stacked_s = timings["stacked (fit_many)"][0] / epochs
    if "sequential (fit per z_dim)" in timings:
        sequential_s = timings["sequential (fit per z_dim)"][0] / epochs
        print(f"\nspeed-up of the stacked sweep: {sequential_s / stacked_s:.2f}x")
        pairs = zip(timings["stacked (fit_many)"][2], timings["sequential (fit per z_dim)"][2],
                    strict=True)
        worst = max(abs(a.history[-1]["val_loss"] - b.history[-1]["val_loss"]) for a, b in pairs)
        print(f"largest difference in final validation loss, stacked vs sequential: "
              f"{worst:.2e} nats")
    print(f"extrapolated default study ({STUDY_EPOCHS} epochs, {args.dataset}): "
          f"{stacked_s * STUDY_EPOCHS:.0f} s = {stacked_s * STUDY_EPOCHS / 60:.1f} min stacked")
    print(f"load average (1 min) before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
