"""Test NLL of the recipes, each trained and scored as its protocol says, written as records.

For every recipe named (``vaelab recipes``), the benchmark trains it exactly as
``vaelab train --recipe NAME [--budget-epochs N]`` does (the same settings resolution and the
same lifecycle), scores the checkpoint its protocol names with its protocol (K = 5000
importance samples on all 10,000 test images unless --samples / --test-images reduce it, which
the record then says), and writes one JSON record per run under OUT/records/ (and all of them in
OUT/results.json). ``benchmarks/reproductions.py`` renders the records as the table and the
figure of docs/reproductions.md; nothing there is typed by hand.

How long each recipe trains:

* ``--budget-epochs N`` (one for all recipes, or one per recipe): N epochs, the recipe's
  schedule and warm-ups compressed to fit (the record says "compressed");
* ``--fit-seconds S``: the epochs that fit in about S seconds of training, estimated before the
  run from the step rate measured on a fresh copy of the same step on the same data (a few
  hundred steps, the median rate of up to six windows of 50, in at most 5 % of S) plus one
  timed validation pass; the record keeps the rate and the estimate;
* neither: the recipe's own length (the full protocol).

``--curve P`` also scores the run at P - 1 earlier epochs (N / 3^(P-1), ..., N / 3), with
``--curve-samples`` K on all test images: the run is stopped there and resumed, which
vaelab does bit-identically, so the training is the one an uninterrupted run does.

A run directory left by an interrupted benchmark is resumed; a finished one is scored again.

Usage:
  python benchmarks/bench_nll.py --recipes burda-vae-k1 --budget-epochs 200 --out results/cpu
  python benchmarks/bench_nll.py --recipes burda-vae-k1 burda-iwae-k50 --fit-seconds 600 \\
      --time-limit 1500 --device cuda --out results/gpu
Data: full MNIST from --data-dir or $VAELAB_DATA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from commit import git_commit
from vaelab.cli.output import format_table
from vaelab.config import TrainConfig, resolve_config
from vaelab.data import load_splits
from vaelab.device import resolve_device
from vaelab.errors import VaelabError
from vaelab.evaluation.likelihood import estimate_nll
from vaelab.recipes import RECIPES, Recipe, recipe_run
from vaelab.runs.checkpoint import read_checkpoint
from vaelab.runs.layout import RunDir
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, TrainingInterrupted, fit
from vaelab.training.schedule import steps_per_epoch

REPO = Path(__file__).resolve().parents[1]
CALIBRATION_WARMUP = 30  # steps before the timed ones (allocator, caches, CUDA graph capture)
CALIBRATION_WINDOWS = 6  # timed windows of steps; their median rate is the step rate, so a
CALIBRATION_STEPS = 50  # burst of other work on a shared machine moves it little
CALIBRATION_SHARE = 0.05  # of --fit-seconds (at least 2 s) the timing may take; then it stops
FIT_SAFETY = 0.9  # share of --fit-seconds planned for, against per-epoch costs not measured
RECORDS = "records"  # OUT/records/<recipe>.json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES.names(), metavar="NAME",
                        default=[n for n in RECIPES.names() if RECIPES.get(n).published],
                        help="recipes to run, in order (default: every one with a published "
                        "figure)")
    parser.add_argument("--budget-epochs", type=int, nargs="+", metavar="N",
                        help="epochs to train: one number for every recipe, or one per recipe")
    parser.add_argument("--fit-seconds", type=float, metavar="S",
                        help="train each recipe for the epochs that fit in about S seconds, "
                        "estimated from a measured step rate")
    parser.add_argument("--time-limit", type=float, metavar="T",
                        help="with --fit-seconds: start no recipe that would end past T seconds "
                        "from the start (it is recorded as not run)")
    parser.add_argument("--samples", type=int, help="importance samples K per test image "
                        "(default: the recipe's protocol, 5000)")
    parser.add_argument("--test-images", type=int, help="score only the first N test images "
                        "(default: all, as the protocol)")
    parser.add_argument("--curve", type=int, default=1, metavar="P",
                        help="points of the NLL-against-passes curve per recipe (default 1: the "
                        "final one only)")
    parser.add_argument("--curve-samples", type=int, default=500, metavar="K",
                        help="importance samples of the curve's earlier points (default 500)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe setting (e.g. dataset=mnist-sample); the record "
                        "says the run was modified")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (torch.set_num_threads)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="folder for the run directories, the "
                        "records and results.json")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what the record says was run
    if args.budget_epochs and args.fit_seconds:
        parser.error("give --budget-epochs or --fit-seconds, not both")
    if args.budget_epochs and len(args.budget_epochs) not in (1, len(args.recipes)):
        parser.error(f"--budget-epochs takes one number or one per recipe ({len(args.recipes)})")
    if args.time_limit and not args.fit_seconds:
        parser.error("--time-limit goes with --fit-seconds (only then is a recipe's time known)")
    if args.curve < 1:
        parser.error("--curve must be at least 1")
    return args


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE pairs as settings (JSON values where they parse: numbers, lists)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise VaelabError(f"--set {pair!r}: write KEY=VALUE, e.g. dataset=mnist-sample")
        try:
            values[key.replace("-", "_")] = json.loads(text)
        except ValueError:
            values[key.replace("-", "_")] = text
    return values


def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"kind": "gpu" if gpu else "cpu", "gpu": gpu, "cpu": cpu,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def describe(where: dict[str, Any]) -> str:
    if where["gpu"]:
        return str(where["gpu"])
    return (f"CPU {where['cpu_capability']}, {where['cores']} cores, "
            f"{where['threads']} torch threads ({where['cpu']})")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calibrate(config: TrainConfig, device: torch.device, seconds: float) -> dict[str, float]:
    """Seconds per epoch of ``config``'s training, from its step measured on a fresh model.

    The timed windows stop after ``seconds`` (at least one window is timed).
    """
    from vaelab.data.tensors import device_splits
    from vaelab.evaluation.elbo import evaluate
    from vaelab.models import create_model
    from vaelab.training.fit import fresh_step

    data = device_splits(config.dataset, config.data_dir, config.val_size, device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = create_model(config.model_config()).to(device)
        step = fresh_step(model, config, data.train_images, data.train_labels)
        n, batch = len(data.train_images), config.batch_size
        order = torch.randperm(n, device=device)
        total = CALIBRATION_WARMUP + CALIBRATION_WINDOWS * CALIBRATION_STEPS
        rows = [order[(i * batch) % (n - batch):(i * batch) % (n - batch) + batch].unsqueeze(0)
                for i in range(total)]
        for index in rows[:CALIBRATION_WARMUP]:
            step(index, [config.beta])
        rates: list[float] = []
        box = time.perf_counter()
        for w in range(CALIBRATION_WINDOWS):
            if rates and time.perf_counter() - box > seconds:
                break
            _sync(device)
            started = time.perf_counter()
            start = CALIBRATION_WARMUP + w * CALIBRATION_STEPS
            for index in rows[start:start + CALIBRATION_STEPS]:
                step(index, [config.beta])
            _sync(device)
            rates.append(CALIBRATION_STEPS / (time.perf_counter() - started))
        rate = sorted(rates)[len(rates) // 2]
        started = time.perf_counter()
        if len(data.val_images):
            evaluate(step.member_model(0), data.val_images, data.val_labels, config.binarize)
        validation = time.perf_counter() - started
    steps = steps_per_epoch(n, batch)
    return {"steps_per_s": rate, "validation_s": validation, "steps_per_epoch": steps,
            "epoch_s": steps / rate + validation, "windows": len(rates)}


@dataclass
class Plan:
    """One recipe's run: its resolved settings and how its length was chosen."""

    recipe: Recipe
    config: TrainConfig
    budget: dict[str, Any]


def plan(name: str, index: int, args: argparse.Namespace, device: torch.device,
         out: Path) -> Plan:
    recipe = RECIPES.get(name)
    flags = {"recipe": name, "out": str(out / "runs" / name), "device": args.device,
             **({"data_dir": args.data_dir} if args.data_dir else {}), **overrides(args.set)}
    budget: dict[str, Any] = {"how": "the recipe's length"}
    epochs: int | None = None
    if args.budget_epochs:
        epochs = args.budget_epochs[index if len(args.budget_epochs) > 1 else 0]
        budget = {"how": "given (--budget-epochs)"}
    elif args.fit_seconds:
        rate = calibrate(resolve_config(flags), device,
                         max(2.0, CALIBRATION_SHARE * args.fit_seconds))
        epochs = max(1, min(recipe.epochs, math.floor(FIT_SAFETY * args.fit_seconds
                                                      / rate["epoch_s"])))
        budget = {"how": f"fitted to {args.fit_seconds:g} s from a measured step rate",
                  "fit_seconds": args.fit_seconds, **rate,
                  "calibration": f"median of {rate['windows']:g} windows of "
                                 f"{CALIBRATION_STEPS} steps"}
    config = resolve_config(flags, budget_epochs=None if epochs == recipe.epochs else epochs)
    return Plan(recipe, config, budget)


def curve_epochs(epochs: int, points: int) -> list[int]:
    """The epochs of the curve's points: N / 3^(P-1), ..., N / 3, N (distinct, at least 1)."""
    return sorted({max(1, round(epochs / 3 ** i)) for i in range(points)})


def train(config: TrainConfig, stop_at_epoch: int) -> None:
    """Train (or resume) ``config`` up to the end of epoch ``stop_at_epoch``."""
    run = RunDir(config.out)
    done_steps = 0
    resume = run.holds_run()
    if resume:
        state = read_checkpoint(run.last).state
        done_steps = state.global_step if state is not None else 0
        if state is not None and state.epoch >= stop_at_epoch:
            return
    steps = steps_per_epoch(_n_train(config), config.batch_size)
    target = stop_at_epoch * steps
    taken = {"n": done_steps}

    def stop() -> bool:
        taken["n"] += 1
        return taken["n"] >= target and stop_at_epoch < config.epochs

    # Stopped at the curve's point, its checkpoint saved: it is scored, then resumed.
    with contextlib.suppress(TrainingInterrupted):
        fit(config, RunOptions(resume=resume, stop_requested=stop))


_TRAIN_SIZES: dict[tuple[Any, ...], int] = {}


def _n_train(config: TrainConfig) -> int:
    key = (config.dataset, config.data_dir, config.val_size)
    if key not in _TRAIN_SIZES:
        _TRAIN_SIZES[key] = len(load_splits(*key).train_images)
    return _TRAIN_SIZES[key]


def score(config: TrainConfig, checkpoint: str, samples: int, n_test: int | None,
          device: torch.device) -> dict[str, Any]:
    loaded = load_run(config.out, which=checkpoint, device=device)
    splits = load_splits(config.dataset, config.data_dir, config.val_size)
    images, labels = splits.split("test")
    images_t = torch.from_numpy(images[:n_test]).to(device)
    labels_t = torch.from_numpy(labels[:n_test]).long().to(device)
    started = time.perf_counter()
    nll = estimate_nll(loaded.model, images_t, labels_t, config.binarize, samples=samples,
                       seed=0)
    _sync(device)
    return {"nll": nll.nll, "nll_se": nll.nll_se, "bits_per_dim": nll.bits_per_dim,
            "samples": samples, "test_images": nll.n, "test_split": len(images),
            "checkpoint": checkpoint, "score_seconds": time.perf_counter() - started}


def run_recipe(p: Plan, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    config, recipe = p.config, p.recipe
    followed = recipe_run(config)
    assert followed is not None
    samples = args.samples or recipe.nll_samples
    started = time.perf_counter()
    curve = []
    points = curve_epochs(config.epochs, args.curve)
    for epoch in points:
        train(config, epoch)
        if epoch < config.epochs:
            point = score(config, recipe.checkpoint, args.curve_samples, args.test_images, device)
            curve.append({"epochs": epoch, **point})
            print(f"[{recipe.name}] epoch {epoch}: NLL {point['nll']:.2f} ± {point['nll_se']:.2f}"
                  f" (K = {args.curve_samples})", file=sys.stderr, flush=True)
    wall = time.perf_counter() - started
    final = score(config, recipe.checkpoint, samples, args.test_images, device)
    curve.append({"epochs": config.epochs, **final})
    history = RunDir(config.out).read_metrics()
    departures = []
    if samples != recipe.nll_samples:
        departures.append(f"K = {samples}")
    if final["test_images"] < final["test_split"]:
        departures.append(f"the first {final['test_images']} test images")
    where = machine(device)
    return {
        "recipe": recipe.name, "label": followed.label(), "brief": followed.brief(),
        "source": recipe.source, "published": recipe.published, "pythae": recipe.pythae,
        "epochs": config.epochs, "recipe_epochs": recipe.epochs,
        "compressed": followed.compressed, "overrides": followed.overrides,
        **{k: final[k] for k in ("nll", "nll_se", "bits_per_dim", "samples", "test_images",
                                 "checkpoint", "score_seconds")},
        "evaluation": "the recipe's protocol" if not departures else
        "reduced: " + ", ".join(departures),
        "train_seconds": sum(float(r.get("seconds", 0.0)) for r in history),
        "wall_seconds": wall + final["score_seconds"], "curve": curve, "budget": p.budget,
        "machine": where, "machine_text": describe(where),
        "command": shlex.join(["python", "benchmarks/bench_nll.py", *args.argv]),
        "vaelab": [f"vaelab train --recipe {recipe.name}"
                   + (f" --budget-epochs {config.epochs}" if followed.compressed else "")
                   + f" --out {config.out}",
                   f"vaelab evaluate {config.out} --nll"],
        "finished": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", "commit": git_commit(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    (out / RECORDS).mkdir(parents=True, exist_ok=True)
    print(f"device: {describe(machine(device))}", file=sys.stderr)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    for index, name in enumerate(args.recipes):
        left = None if args.time_limit is None else args.time_limit - (time.perf_counter()
                                                                         - started)
        if left is not None and left < 1.5 * args.fit_seconds:  # training, then its scoring
            results.append({"recipe": name, "not_run": f"the time limit had {left:.0f} s left, "
                            f"under 1.5 x --fit-seconds"})
            print(f"[{name}] not run: {results[-1]['not_run']}", file=sys.stderr)
            continue
        p = plan(name, index, args, device, out)
        print(f"[{name}] {recipe_run(p.config).label()}; {p.budget['how']}",  # type: ignore[union-attr]
              file=sys.stderr, flush=True)
        record = run_recipe(p, args, device)
        print(f"[{name}] NLL {record['nll']:.2f} ± {record['nll_se']:.2f} nats (K = "
              f"{record['samples']}, {record['test_images']} test images) after "
              f"{record['epochs']} epochs, {record['train_seconds']:.0f} s of training",
              file=sys.stderr, flush=True)
        results.append(record)
        (out / RECORDS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = [[r["recipe"], f"{r['epochs']}/{r['recipe_epochs']}",
             f"{r['nll']:.2f} ± {r['nll_se']:.2f}", r["samples"], r["test_images"],
             "-" if r["published"] is None else r["published"],
             "-" if r["published"] is None else f"{r['nll'] - r['published']:+.2f}",
             f"{r['train_seconds']:.0f}", f"{r['score_seconds']:.0f}"]
            for r in results if "nll" in r]
    print(format_table(rows, ["recipe", "epochs", "test NLL (nats)", "K", "test images",
                              "published", "gap", "train s", "score s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
