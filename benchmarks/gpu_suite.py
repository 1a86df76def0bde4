"""vaelab's GPU checks in one time-boxed run: CUDA tests, step speed, the study, recipes, DDP.

Each step is a child process with its own timeout, so a crash or a hang in one step still
leaves the other steps' figures. Under --out the suite writes ``summary.json`` (environment;
per step its status, seconds, timeout, command line, figures and targets; rewritten after
every step), ``suite.log`` (what ran, when, with which result) and ``<step>.log`` (each step's
output). Run directories, the study and the classifier cache go to --work (default OUT/work).

Usage:
  PYTHONPATH=src python3 benchmarks/gpu_suite.py --data-dir .data --out OUT --work /tmp/gpu-work
  python benchmarks/gpu_suite.py --dry-run --out /tmp/gpu-dry    # the same steps, tiny, on the CPU
docs/gpu.md describes the steps, their budgets and targets, and how to read summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commit import git_commit

REPO = Path(__file__).resolve().parents[1]
SUITE_LIMIT_S = 470.0  # a GPU run ends within 8 minutes, its children's start-up included
# Seconds each stage may take on one H100 (likelihood: twice --nll-budget plus NLL_OVERHEAD_S);
# with the default budget they sum to SUITE_LIMIT_S.
GPU_TIMEOUTS = {"environment": 15, "cuda_tests": 40, "bench_train": 100, "study": 125, "ddp": 30}
# The CPU rehearsal: limits against hangs on a slow shared machine, not a plan.
DRY_TIMEOUTS = {"environment": 60, "cuda_tests": 90, "bench_train": 120, "study": 180, "ddp": 30}
NLL_BUDGET_S = {"gpu": 50.0, "dry": 1.0}  # training seconds per recipe (--fit-seconds)
NLL_OVERHEAD_S = 60.0  # start-up, data, step-rate measurements and scorings of the recipes
NLL_MARGIN_S = 15.0  # bench_nll's own time limit ends this long before the step's timeout
DRY_LIKELIHOOD_S = 120.0  # the dry run's two recipes (start-up, step rates, scoring) on a CPU
DRY_IMAGES = (600, 100)  # training and test digits of the dry run's recipes
DRY_DATASET = "dry-digits.npz"  # written under --work by the probe
# The recipes the likelihood step runs, most wanted first (the GPU goals' two lead).
RECIPE_ORDER = ("burda-vae-k1", "burda-iwae-k50", "burda-iwae-k5", "burda-vae2-k1",
                "burda-iwae2-k50", "vampprior", "burda-vae-k5", "burda-vae-k50")
GPU_GOALS = {"burda-vae-k1": 0.3, "burda-iwae-k50": 0.3}  # nats above the paper's figure
TRAIN_TARGETS = {128: 0.16, 32: 0.55}  # s/epoch of `vaelab fp32` (CUDA graphs) on one H100
STUDY_TARGET_S = 60.0  # training seconds of the original study (stacked, 100 epochs, batch 32)
METRICS = "metrics.jsonl"  # a run directory's per-epoch records


@dataclass
class Context:
    """What every step needs to know about this run of the suite."""

    dry_run: bool
    data_dir: str | None
    out: Path
    work: Path
    env: dict[str, str]  # the children's environment
    nll_budget: float
    gpus: int = 0  # CUDA devices the probe saw

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"

    @property
    def dataset(self) -> str:
        return "mnist-sample" if self.dry_run else "mnist"

    def data_args(self) -> list[str]:
        folder = ["--data-dir", self.data_dir] if self.data_dir else []
        return ["--dataset", self.dataset, *folder]

    def unjudged(self) -> str:
        """Why targets are not judged in this run; "" on the GPU, where they are set."""
        return "set for full MNIST on a GPU; this is the dry run" if self.dry_run else ""


@dataclass
class Run:
    """A finished child process."""

    code: int | None  # exit code; None when it was stopped at its timeout
    seconds: float
    log: str  # its output, stdout and stderr together
    log_name: str = ""  # the file that holds it


@dataclass
class Outcome:
    status: str  # ok, failed, timeout or skipped
    reason: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    line: str = ""  # the main figures in a few words, for the progress line


@dataclass
class Step:
    command: list[str]
    parse: Callable[[Context, Run], Outcome]
    skip: str = ""  # why it does not run, if it does not


def run_logged(command: list[str], log_path: Path, timeout: float, env: dict[str, str]) -> Run:
    """Run ``command`` in a process group of its own, its output into ``log_path``."""
    with open(log_path, "w") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, process_group=0)
        code: int | None = None
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = child.wait(timeout=timeout)
        finally:  # at the timeout, or when the suite itself is stopped
            if code is None:
                stop(child)
        seconds = time.perf_counter() - started
    return Run(code, seconds, log_path.read_text(errors="replace"), log_path.name)


def stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets vaelab save a checkpoint and exit; 5 s later SIGKILL ends the group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def conclude(run: Run, figures: dict[str, Any], missing: str,
             targets: list[dict[str, Any]] | None = None, line: str = "") -> Outcome:
    """The status of a step: timeout, a failed exit, ``missing`` figures, or ok."""
    if run.code is None:
        status, reason = "timeout", f"stopped at its timeout after {run.seconds:.0f} s"
    elif run.code != 0:
        status, reason = "failed", f"exit code {run.code}; see {run.log_name}"
    else:
        status, reason = ("failed", missing) if missing else ("ok", "")
    return Outcome(status, reason, figures, targets or [], line)


def target(name: str, limit: float, measured: float | None, unit: str, unjudged: str = "",
           extrapolated: bool = False) -> dict[str, Any]:
    """One target: met when ``measured <= limit``, unless ``unjudged`` says why it is not judged.

    ``gap`` is measured - limit (positive: missed by that much), judged or not.
    """
    unjudged = unjudged or ("not measured" if measured is None else "")
    met = None if unjudged or measured is None else measured <= limit
    return {"name": name, "limit": limit, "unit": unit, "measured": measured, "met": met,
            "gap": None if measured is None else measured - limit,
            "extrapolated": extrapolated, "not_judged": unjudged or None}


def verdict(t: dict[str, Any]) -> str:
    if t["met"] is None:
        return "not judged"
    return "target met" if t["met"] else f"target missed by {t['gap']:.2f} {t['unit']}"


# -- 1. the CUDA tests ----------------------------------------------------------------------
def cuda_tests_step(ctx: Context) -> Step:
    # The files that hold CUDA tests, named: a file elsewhere that fails to import (say, in the
    # middle of a refactor) cannot stop these from running.
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py")
                   if "pytest.mark.cuda" in p.read_text())
    junit = ctx.work / "cuda_tests" / "junit.xml"
    # -o addopts= drops the project's parallel-worker options: the device machine may not have
    # pytest-xdist, and the CUDA tests run best one after another on one GPU.
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:benchmark", "-m",
               "cuda", "-q", "-p", "no:cacheprovider", "--strict-markers",
               f"--junitxml={junit}", *files]
    skip = "" if files else "no test file carries @pytest.mark.cuda"
    return Step(command, lambda c, r: parse_cuda_tests(c, r, junit), skip)


def parse_cuda_tests(ctx: Context, run: Run, junit: Path) -> Outcome:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    if junit.is_file():
        root = ET.parse(junit).getroot()
        for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
            number = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
            counts["passed"] += number["tests"] - number["failures"] - number["errors"] \
                - number["skipped"]
            counts["failed"] += number["failures"]
            counts["errors"] += number["errors"]
            counts["skipped"] += number["skipped"]
    line = ", ".join(f"{n} {k}" for k, n in counts.items())
    missing = "no CUDA test passed on a CUDA machine" if ctx.gpus and not counts["passed"] else ""
    outcome = conclude(run, counts, missing, line=line)
    if outcome.status == "ok" and not ctx.gpus:
        outcome.status = "skipped"
        outcome.reason = f"no CUDA device: the {counts['skipped']} CUDA tests were collected " \
            "and skipped"
    return outcome


# -- 2. seconds per epoch: bench_train.py ---------------------------------------------------
def bench_train_step(ctx: Context) -> Step:
    # Batch 32 first: --quality trains after batch 128, so a timeout costs the quality run first.
    command = [sys.executable, "benchmarks/bench_train.py", *ctx.data_args(),
               "--devices", ctx.device, "--batch-sizes", "32", "128", "--no-rss", "--quality"]
    command += (["--repeats", "1", "--quality-epochs", "1", "--max-images", "512",
                 "--precision", "fp32"] if ctx.dry_run else ["--repeats", "2"])
    return Step(command, parse_bench_train)


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """The rows of every table that ``vaelab.cli.output.format_table`` printed in ``text``."""
    lines = [*text.splitlines(), ""]
    is_rule = [bool(re.fullmatch(r"-+(  -+)*", line)) for line in lines]
    tables = []
    for i in range(1, len(lines) - 1):
        if not is_rule[i]:
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[i])]
        headers = [lines[i - 1][a:b].strip() for a, b in spans]
        rows, j = [], i + 1
        # A row leaves the two-space gaps between columns blank; the next header ends a table.
        while (lines[j].strip() and not is_rule[j] and not is_rule[j + 1]
               and not any(lines[j][b:b + 2].strip() for _, b in spans[:-1])):
            rows.append({h: lines[j][a:b].strip() for h, (a, b) in zip(headers, spans,
                                                                       strict=True)})
            j += 1
        tables.append(rows)
    return tables


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_bench_train(ctx: Context, run: Run) -> Outcome:
    per_epoch: dict[str, dict[str, float | None]] = {}
    speedup: dict[str, dict[str, float | None]] = {}
    quality: dict[str, dict[str, float | None]] = {}
    for row in (row for rows in parse_tables(run.log) for row in rows):
        if "s/epoch (median)" in row:
            per_epoch.setdefault(row["batch"], {})[row["loop"]] = number(row["s/epoch (median)"])
            speedup.setdefault(row["batch"], {})[row["loop"]] = number(row["x reference"])
        elif "test loss" in row:
            quality[row["loop"]] = {"test_loss": number(row["test loss"]),
                                    "seconds_per_epoch": number(row["seconds/epoch"])}
    # Each loop's line as it finishes, for a run stopped before the quality table.
    for loop, loss in re.findall(r"^  (.+): test loss ([\d.]+) after \d+ epochs$", run.log, re.M):
        quality.setdefault(loop, {"test_loss": float(loss), "seconds_per_epoch": None})
    data = re.search(r"^data: (\S+), (\d+) training images", run.log, re.M)
    epochs = re.search(r"^  .+: test loss [\d.]+ after (\d+) epochs$", run.log, re.M)
    figures = {"dataset": data[1] if data else None, "images": int(data[2]) if data else None,
               "seconds_per_epoch": per_epoch, "x_reference": speedup,
               "quality": {"epochs": int(epochs[1]) if epochs else None, "loops": quality}}
    targets = [target(f"batch {b}: vaelab fp32 (CUDA graphs) seconds per epoch", limit,
                      per_epoch.get(str(b), {}).get("vaelab fp32"), "s", ctx.unjudged())
               for b, limit in TRAIN_TARGETS.items()]
    line = "; ".join(f"batch {b}: {t['measured']} s/epoch, {verdict(t)}"
                     for b, t in zip(TRAIN_TARGETS, targets, strict=True) if t["measured"])
    missing = "" if set(per_epoch) == {"32", "128"} and quality else \
        "the timing or quality table is missing from bench_train.log"
    return conclude(run, figures, missing, targets, line)


# -- 3. the original study ------------------------------------------------------------------
def study_step(ctx: Context) -> Step:
    study_dir = ctx.work / "study" / "study"
    command = [sys.executable, "-m", "vaelab", "study", "--out", str(study_dir), *ctx.data_args(),
               "--device", ctx.device, "--classifier-dir", str(ctx.work / "classifiers")]
    if ctx.dry_run:  # two z_dims, one epoch; fewer images and prior draws where offered
        command += ["--z-dims", "5,10", "--epochs", "1", "--batch-size", "256"]
        offered = help_text(ctx, ["-m", "vaelab", "study", "--help"])
        command += ["--val-size", "9500"] if "--val-size" in offered else []
        command += ["--prior-samples", "100"] if "--prior-samples" in offered else []
    else:  # the original study, spelled out so that the summary's command line says it
        command += ["--z-dims", "1,2,5,10,20", "--epochs", "100", "--batch-size", "32"]
    z_dims = [int(z) for z in command[command.index("--z-dims") + 1].split(",")]
    epochs = int(command[command.index("--epochs") + 1])
    return Step(command, lambda c, r: parse_study(c, r, study_dir, z_dims, epochs))


def help_text(ctx: Context, args: list[str]) -> str:
    try:
        return subprocess.run([sys.executable, *args], cwd=REPO, env=ctx.env, timeout=60,
                              capture_output=True, text=True).stdout
    except subprocess.TimeoutExpired:
        return ""


def read_json(path: Path, empty: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else empty


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text() if path.is_file() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_study(ctx: Context, run: Run, study_dir: Path, z_dims: list[int],
                epochs: int) -> Outcome:
    histories = [read_jsonl(study_dir / f"z{z}" / METRICS) for z in z_dims]
    done = min(len(h) for h in histories)
    # A stacked epoch trains every z_dim at once, and each z_dim's record holds the epoch's
    # wall time (or, in earlier versions, the time up to its own validation): take the largest.
    train_s = sum(max(h[e]["seconds"] for h in histories) for e in range(done))
    per_epoch = train_s / done if done else None
    estimate = train_s if done == epochs else (per_epoch * epochs if per_epoch else None)
    results = read_json(study_dir / "results.json", {})
    runs = results.get("runs", [])
    neg_elbo: dict[str, float] = {}
    for r in runs.values() if isinstance(runs, dict) else runs:  # the first seed's, per z_dim
        neg_elbo.setdefault(str(r["z_dim"]), r["test"]["neg_elbo"])
    classifier = results.get("classifier", {})
    figures = {"z_dims": z_dims, "epochs": epochs, "epochs_done": done,
               "train_seconds": train_s, "seconds_per_epoch": per_epoch,
               "train_seconds_for_all_epochs": estimate, "extrapolated": done < epochs,
               "wall_seconds": run.seconds, "rest_seconds": run.seconds - train_s,
               "test_neg_elbo": neg_elbo,
               "classifier": {"test_accuracy": classifier.get("test_accuracy"),
                              "epochs": classifier.get("epochs"), "stand_in": ctx.dry_run}}
    targets = [target(f"training seconds of the study ({epochs} epochs of {len(z_dims)} "
                      "stacked z_dims)", STUDY_TARGET_S, estimate, "s", ctx.unjudged(),
                      extrapolated=done < epochs)]
    line = (f"{done}/{epochs} epochs trained in {train_s:.1f} s, {verdict(targets[0])}; "
            f"the rest {run.seconds - train_s:.1f} s")
    missing = "" if done == epochs and sorted(map(int, neg_elbo)) == z_dims else \
        "metrics.jsonl or results.json lack the study's figures"
    return conclude(run, figures, missing, targets, line)


# -- 4. the recipes, as many as fit ------------------------------------------------------------
def likelihood_timeout(budget: float, dry_run: bool = False) -> float:
    """Seconds of the likelihood step: on a GPU, two recipes of ``budget`` training seconds and
    the rest; in the dry run, a limit against hangs."""
    return DRY_LIKELIHOOD_S if dry_run else 2 * budget + NLL_OVERHEAD_S


def likelihood_step(ctx: Context) -> Step:
    """bench_nll.py on the recipes in RECIPE_ORDER, each fitted to --nll-budget seconds of
    training, starting none that would end past the step's time (those are recorded not run)."""
    out = ctx.work / "likelihood"
    recipes = RECIPE_ORDER[:2] if ctx.dry_run else RECIPE_ORDER
    limit = likelihood_timeout(ctx.nll_budget, ctx.dry_run) - NLL_MARGIN_S
    command = [sys.executable, "benchmarks/bench_nll.py", "--recipes", *recipes,
               "--fit-seconds", f"{ctx.nll_budget:g}", "--time-limit", f"{limit:g}",
               "--device", ctx.device, "--out", str(out)]
    command += ["--data-dir", ctx.data_dir] if ctx.data_dir else []
    # The dry run: 600 digits of the sample as the user's own data, K = 10 on 100 test images.
    command += (["--set", f"dataset={ctx.work / DRY_DATASET}", "--samples", "10",
                 "--test-images", "100"] if ctx.dry_run else [])
    return Step(command, lambda c, r: parse_likelihood(c, r, out / "results.json"))


def parse_likelihood(ctx: Context, run: Run, results_path: Path) -> Outcome:
    recipes: dict[str, Any] = {}
    targets = []
    for r in read_json(results_path, []):
        name = r["recipe"]
        if "nll" not in r:
            recipes[name] = {"not_run": r.get("not_run")}
            continue
        epoch_s = r["train_seconds"] / r["epochs"] if r["epochs"] else None
        recipes[name] = {
            "nll": r["nll"], "nll_se": r["nll_se"], "samples": r["samples"],
            "test_images": r["test_images"], "epochs": r["epochs"],
            "recipe_epochs": r["recipe_epochs"], "compressed": r["compressed"],
            "published": r["published"], "train_seconds": r["train_seconds"],
            "score_seconds": r["score_seconds"], "steps_per_s": r["budget"].get("steps_per_s"),
            "extrapolated": {
                "note": "from the measured seconds per epoch, not measured",
                "seconds_for_the_full_recipe": r["recipe_epochs"] * epoch_s if epoch_s else None}}
        if name in GPU_GOALS and r["published"] is not None:
            limit = r["published"] + GPU_GOALS[name]
            # Reached by a compressed run, the goal is met; missed, it says nothing of the
            # full protocol the goal is set for.
            unjudged = ctx.unjudged() or ("" if r["nll"] <= limit or not r["compressed"] else
                                        f"compressed to {r['epochs']} of {r['recipe_epochs']} "
                                        "epochs; the goal is set for the full protocol")
            targets.append(target(f"{name}: test NLL within {GPU_GOALS[name]} nats of the "
                                  f"paper's {r['published']}", limit, r["nll"], "nats",
                                  unjudged))
    figures = {"fit_seconds": ctx.nll_budget, "recipes": recipes}
    line = "; ".join(f"{name} {m['nll']:.2f} nats after {m['epochs']} epochs"
                     for name, m in recipes.items() if "nll" in m)
    first = RECIPE_ORDER[0]
    missing = "" if "nll" in recipes.get(first, {}) else f"results.json lacks {first}"
    return conclude(run, figures, missing, targets, line)


# -- 5. two-process DDP over NCCL -----------------------------------------------------------
def ddp_step(ctx: Context) -> Step:
    run_dir = ctx.work / "ddp" / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "vaelab", "train", *ctx.data_args(),
               "--epochs", "2", "--batch-size", "128", "--device", ctx.device,
               "--out", str(run_dir)]
    skip = ("dry run: two NCCL processes need two GPUs" if ctx.dry_run else
            f"needs two GPUs for two NCCL processes; {ctx.gpus} visible" if ctx.gpus < 2 else "")
    return Step(command, lambda c, r: parse_ddp(r, run_dir), skip)


def parse_ddp(run: Run, run_dir: Path) -> Outcome:
    seconds = [r["seconds"] for r in read_jsonl(run_dir / METRICS)]
    figures = {"epoch_seconds": seconds, "seconds_per_epoch": seconds[-1] if seconds else None}
    line = f"{seconds[-1]:.2f} s per epoch (the last of {len(seconds)})" if seconds else ""
    missing = "" if len(seconds) == 2 else "the run's metrics.jsonl lacks its epochs"
    return conclude(run, figures, missing, line=line)


STEPS: dict[str, Callable[[Context], Step]] = {
    "cuda_tests": cuda_tests_step, "bench_train": bench_train_step, "study": study_step,
    "likelihood": likelihood_step, "ddp": ddp_step}


# -- the environment, seen from a child process -----------------------------------------------
def probe(stand_in: str | None, dry_dataset: str | None = None) -> dict[str, Any]:
    """What a child process sees: ``gpu_suite.py --probe``; in the dry run it also writes the
    stand-in classifier and the recipes' small dataset."""
    import platform

    import torch

    cuda = torch.cuda.is_available()
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpu_name": torch.cuda.get_device_name() if cuda else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(), "platform": platform.platform()}
    if stand_in:
        env["stand_in_classifier_accuracy"] = write_stand_in_classifier(Path(stand_in),
                                                                        "mnist-sample")
    if dry_dataset:
        env["dry_dataset"] = write_dry_dataset(Path(dry_dataset))
    return env


def write_dry_dataset(path: Path) -> dict[str, int]:
    """The dry run's recipes train on this: the first DRY_IMAGES training and test digits of
    mnist-sample as an .npz, read the way a user's own data is (``--dataset PATH``). Split
    from the sample's 10,000, either the training or the validation images run to thousands,
    seconds of a CPU per epoch; 600 are enough to check the plumbing."""
    import numpy as np

    from vaelab.data.datasets import load_splits

    splits = load_splits("mnist-sample", None)
    n_train, n_test = DRY_IMAGES
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x_train=splits.train_images[:n_train],
                        y_train=splits.train_labels[:n_train],
                        x_test=splits.test_images[:n_test], y_test=splits.test_labels[:n_test])
    return {"train": n_train, "test": n_test}


def write_stand_in_classifier(cache: Path, dataset: str) -> float:
    """An untrained DigitCNN where the study looks for its cached classifier; its accuracy.

    Training the real one takes minutes on a CPU. The dry run checks the plumbing, so its
    digit-class figures are meaningless; summary.json says the classifier is a stand-in.
    """
    from dataclasses import asdict

    import torch

    from vaelab.data.datasets import load_splits
    from vaelab.evaluation import classifier as cnn

    settings = cnn.DEFAULT_SETTINGS
    splits = load_splits(dataset, None)
    assert splits.test_labels is not None
    torch.manual_seed(0)
    model = cnn.DigitCNN(len(splits.class_names), settings.negatives > 0).eval()
    images = torch.from_numpy(splits.test_images).unsqueeze(1).float().div(255)
    with torch.no_grad():
        score = cnn.accuracy(model, images, torch.from_numpy(splits.test_labels).long())
    info = cnn.ClassifierInfo(dataset=dataset, epochs=0, seed=0, n_train=0, n_test=len(images),
                              test_accuracy=score, seconds=0.0,
                              class_names=tuple(splits.class_names),
                              reject=settings.negatives > 0, settings=asdict(settings),
                              key=cnn.classifier_key(settings))
    cache.mkdir(parents=True, exist_ok=True)
    cnn.save_classifier(cache / cnn.classifier_filename(splits.content_id, settings),
                        cnn.Classifier(model, info))
    return score


# -- the suite --------------------------------------------------------------------------------
def tidy(value: Any) -> Any:
    """``value`` for summary.json: floats to 4 decimals, NaN and infinities as null."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy(v) for v in value]
    return value


class Suite:
    """Runs the steps in order inside one time limit; keeps summary.json and suite.log current."""

    def __init__(self, ctx: Context, timeouts: dict[str, float], limit: float,
                 summary: dict[str, Any]) -> None:
        self.ctx, self.timeouts, self.limit, self.summary = ctx, timeouts, limit, summary
        self.started = time.perf_counter()

    def left(self) -> float:
        return self.limit - (time.perf_counter() - self.started)

    def log(self, message: str) -> None:
        with open(self.ctx.out / "suite.log", "a") as fh:
            fh.write(f"{datetime.now(UTC):%H:%M:%S} {message}\n")

    def save(self) -> None:
        self.summary["seconds"] = time.perf_counter() - self.started
        statuses = [s["status"] for s in self.summary["steps"].values()]
        self.summary["ok"] = not any(s in ("failed", "timeout") for s in statuses)
        text = json.dumps(tidy(self.summary), indent=1, allow_nan=False)
        (self.ctx.out / "summary.json").write_text(text + "\n")

    def environment(self) -> dict[str, Any]:
        """The probe's report, from a child so that a CUDA hang cannot stop the suite."""
        command = [sys.executable, str(Path(__file__).resolve()), "--probe"]
        if self.ctx.dry_run:
            command += ["--stand-in-classifier", str(self.ctx.work / "classifiers"),
                        "--dry-dataset", str(self.ctx.work / DRY_DATASET)]
        log = self.ctx.work / "environment.log"
        run = run_logged(command, log, min(self.timeouts["environment"], self.left()),
                         self.ctx.env)
        try:
            env: dict[str, Any] = json.loads(run.log.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            env = {"error": f"the probe failed; see {log}"}
        self.log(f"environment: {json.dumps(env)}")
        return env

    def run(self, name: str, step: Step, index: int, selected: bool) -> None:
        timeout = min(self.timeouts[name], self.left())
        skip = (step.skip or ("" if selected else "not selected with --steps")
                or ("" if timeout >= 5 else "the suite's time limit was spent"))
        record: dict[str, Any] = {"status": "skipped", "seconds": 0.0, "timeout_s": timeout,
                                  "command": shlex.join(step.command), "log": None,
                                  "reason": skip, "figures": {}, "targets": []}
        self.log(f"{name}: timeout {timeout:.0f} s; $ {record['command']}")
        line = ""
        if not skip:
            # What a summary shows if the suite itself is stopped while the step runs.
            self.summary["steps"][name] = {**record, "status": "failed",
                                           "reason": "the suite was stopped in this step"}
            self.save()
            shutil.rmtree(self.ctx.work / name, ignore_errors=True)
            (self.ctx.work / name).mkdir(parents=True)
            log_path = self.ctx.out / f"{name}.log"
            result = run_logged(step.command, log_path, timeout, self.ctx.env)
            try:
                outcome = step.parse(self.ctx, result)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                outcome = Outcome("failed", f"its output was not understood: {exc!r}")
            record.update(status=outcome.status, seconds=result.seconds, log=log_path.name,
                          reason=outcome.reason, figures=outcome.figures,
                          targets=outcome.targets)
            line = outcome.line
        self.summary["steps"][name] = record
        self.save()
        head = f"[{index}/{len(STEPS)}] {name}: {record['status']} in " \
            f"{record['seconds']:.1f} s"
        message = "; ".join(text for text in (head, record["reason"], line) if text)
        print(message, file=sys.stderr, flush=True)
        self.log(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELAB_DATA"),
                        help="folder holding mnist/ (default $VAELAB_DATA); the dry run uses "
                        "its mnist-sample/, else the copy shipped with vaelab")
    parser.add_argument("--out", help="folder for summary.json, suite.log and the step logs")
    parser.add_argument("--work", help="folder for run directories, the study and the "
                        "classifier cache (default OUT/work); each step empties its own")
    parser.add_argument("--dry-run", action="store_true",
                        help="every step on the CPU with tiny sizes, to check the suite")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS),
                        help="run only these steps (the others are recorded as skipped)")
    parser.add_argument("--nll-budget", type=float, help="training seconds per recipe of the "
                        f"likelihood step (default {NLL_BUDGET_S['gpu']:g}; dry run "
                        f"{NLL_BUDGET_S['dry']:g})")
    parser.add_argument("--commit", help="the commit to record (default: git rev-parse HEAD)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stand-in-classifier", help=argparse.SUPPRESS)
    parser.add_argument("--dry-dataset", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_context(args: argparse.Namespace) -> Context:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p))
    if args.dry_run:  # on the CPU on any machine, one thread per process: on a small shared
        # machine two OpenMP threads per process stall each other
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    out = Path(args.out).resolve()
    budget = args.nll_budget if args.nll_budget is not None else \
        NLL_BUDGET_S["dry" if args.dry_run else "gpu"]
    return Context(args.dry_run, str(Path(args.data_dir).resolve()) if args.data_dir else None,
                   out, Path(args.work or out / "work").resolve(), env, budget)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.stand_in_classifier, args.dry_dataset)))
        return 0
    if not args.out:
        print("gpu_suite: --out OUTDIR is required", file=sys.stderr)
        return 2
    if not args.dry_run and not (args.data_dir and (Path(args.data_dir) / "mnist").is_dir()):
        print("gpu_suite: --data-dir must name a folder holding mnist/ (or use --dry-run)",
              file=sys.stderr)
        return 2
    ctx = make_context(args)
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.work.mkdir(parents=True, exist_ok=True)
    (ctx.out / "suite.log").write_text("")
    timeouts = {**(DRY_TIMEOUTS if args.dry_run else GPU_TIMEOUTS),
                "likelihood": likelihood_timeout(ctx.nll_budget, args.dry_run)}
    limit = sum(timeouts.values()) if args.dry_run else SUITE_LIMIT_S
    summary: dict[str, Any] = {
        "suite": "vaelab gpu suite", "dry_run": args.dry_run, "device": ctx.device,
        "started_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "command": shlex.join([sys.executable, *sys.argv]), "data_dir": ctx.data_dir,
        "work_dir": str(ctx.work), "time_limit_s": limit, "timeouts_s": timeouts,
        "commit": args.commit or git_commit(), "environment": {}, "steps": {}}
    suite = Suite(ctx, timeouts, limit, summary)
    if sum(timeouts.values()) > limit:
        suite.log(f"the timeouts sum to {sum(timeouts.values()):.0f} s, over the limit of "
                  f"{limit:.0f} s: the last steps may be cut short or skipped")
    # SIGTERM (a timeout around the suite) stops the running step's processes, then the suite.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary["environment"] = suite.environment()
    ctx.gpus = int(summary["environment"].get("gpu_count") or 0)
    for index, (name, make) in enumerate(STEPS.items(), 1):
        step = make(ctx)
        if not args.dry_run and ctx.gpus == 0:
            step.skip = "the probe saw no CUDA device (see environment; the CPU " \
                "rehearsal is --dry-run)"
        suite.run(name, step, index, args.steps is None or name in args.steps)
    suite.save()
    print(f"summary: {ctx.out / 'summary.json'}", file=sys.stderr)
    return 0 if summary["ok"] and (args.dry_run or ctx.gpus) else 1


if __name__ == "__main__":
    sys.exit(main())
