"""The training loop as plain functions: ``train_epoch``, ``evaluate`` and ``fit``.

The data live on the training device as uint8 tensors; a batch is drawn by indexing a seeded
permutation, converted to float on the device, and no per-sample Python runs in the loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.device import resolve_device
from vaelab.errors import VaelabError
from vaelab.evaluation.elbo import evaluate
from vaelab.models import VAE, create_model
from vaelab.runs.atomic import (
    atomic_write_json,
    atomic_write_text,
    ensure_free_space,
    make_dir,
    remove_stale_temps,
)
from vaelab.runs.checkpoint import (
    BEST,
    CONFIG,
    LAST,
    TrainState,
    build_model,
    checkpoint_bytes,
    read_checkpoint,
    save_checkpoint,
)
from vaelab.runs.lock import RunLock
from vaelab.training import sharded as distributed
from vaelab.training.step import TrainStep

__all__ = ["FitResult", "Progress", "epoch_permutation", "fit", "train_epoch"]

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"
_TERMS = ("loss", "recon", "kl")


class Progress(Protocol):
    """What ``fit`` reports to whoever shows progress (the CLI draws bars from it)."""

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...
    def step(self, loss: float | None) -> None: ...
    def epoch_end(self, record: dict[str, Any]) -> None: ...


class TrainingInterrupted(VaelabError):
    """Raised when a stop was requested; the resumable checkpoint has been written."""


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The shuffle of one epoch, a pure function of (seed, epoch) so a resume can redraw it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def kl_weight(config: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """beta, ramped linearly from 0 over the first ``kl_warmup`` epochs."""
    if config.kl_warmup <= 0:
        return config.beta
    progress = (epoch + step / max(steps, 1)) / config.kl_warmup
    return config.beta * min(1.0, progress)


def _accumulator(device: torch.device) -> torch.Tensor:
    # float64 keeps epoch sums exact enough; MPS has no float64.
    return torch.zeros(
        3, dtype=torch.float32 if device.type == "mps" else torch.float64, device=device
    )


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    epoch: int,
    start_step: int = 0,
    running: torch.Tensor | None = None,
    on_step: Callable[[int, torch.Tensor], bool] | None = None,
    train_step: TrainStep | None = None,
) -> tuple[torch.Tensor, int]:
    """Run one epoch's steps from ``start_step``; returns sums (loss, recon, kl) and steps done.

    ``on_step(step, sums)`` is called after every step; it returns True to stop early.
    ``train_step`` (see ``vaelab.training.step``) is built once per run and reused across epochs.
    """
    device = images.device
    n = len(images)
    steps = math.ceil(n / config.batch_size)
    order = epoch_permutation(n, config.seed, epoch, device)
    sums = running if running is not None else _accumulator(device)
    if train_step is None:
        train_step = TrainStep(model, optimizer, config, images, labels)
    model.train()
    for step in range(start_step, steps):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        train_step(index, kl_weight(config, epoch, step, steps), sums)
        if on_step is not None and on_step(step + 1, sums):
            return sums, step + 1
    return sums, steps


@dataclass
class FitResult:
    run_dir: Path
    model: VAE
    history: list[dict[str, Any]]
    best_val: float | None


def _tensor_splits(config: TrainConfig, device: torch.device) -> dict[str, torch.Tensor]:
    splits = load_splits(config.dataset, config.data_dir, config.val_size)
    out = {}
    for which in ("train", "val", "test"):
        images, labels = splits.split(which)
        out[f"{which}_images"] = torch.from_numpy(images).to(device)
        out[f"{which}_labels"] = torch.from_numpy(labels).long().to(device)
    return out


def make_optimizer(model: VAE, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam; the fused kernel where this torch build has one for the device, else foreach."""
    try:
        return torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=config.lr, foreach=device.type != "cpu")


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    import json

    atomic_write_text(run_dir / METRICS, "".join(json.dumps(r) + "\n" for r in history))


def fit(
    config: TrainConfig,
    resume: bool = False,
    progress: Progress | None = None,
    stop_requested: Callable[[], bool] | None = None,
    pictures: bool = True,
) -> FitResult:
    """Train per ``config`` in ``config.out``, resuming from its last checkpoint when asked.

    The run directory is locked for the whole run, so a second process pointed at it is
    refused; temp files a killed writer left there are removed first.
    """
    if distributed.launched():  # started by torchrun: one rank of a data-parallel run
        return distributed.fit_distributed(
            _fit_locked, config, resume, progress, stop_requested, pictures
        )
    return _fit_locked(config, resume, progress, stop_requested, pictures)


def _fit_locked(
    config: TrainConfig,
    resume: bool,
    progress: Progress | None,
    stop_requested: Callable[[], bool] | None,
    pictures: bool,
) -> FitResult:
    with RunLock(config.out) as lock:
        remove_stale_temps(lock.run_dir)
        return _fit(config, resume, progress, stop_requested, pictures)


def _nan_error(
    run_dir: Path, config: TrainConfig, epoch: int, step: int, exact: bool
) -> VaelabError:
    kept = (
        f"the last good checkpoint is kept in {run_dir / LAST}"
        if (run_dir / LAST).is_file()
        else "no checkpoint had been written yet"
    )
    where = (
        f"at epoch {epoch + 1}, step {step}" if exact else f"in epoch {epoch + 1} by step {step}"
    )
    return VaelabError(
        f"the training loss became NaN or infinite {where}; {kept}; train again with a lower "
        f"--lr (now {config.lr:g}) or with gradient clipping, e.g. --grad-clip 10"
    )


def _fit(
    config: TrainConfig,
    resume: bool,
    progress: Progress | None,
    stop_requested: Callable[[], bool] | None,
    pictures: bool,
) -> FitResult:
    run_dir = Path(config.out)
    if (run_dir / LAST).exists() and not resume:
        raise VaelabError(
            f"{run_dir} already holds a run; continue it with `vaelab train --resume "
            f"{run_dir}` or choose another --out"
        )
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    state = TrainState()
    model = create_model(config.model_config()).to(device)
    optimizer = make_optimizer(model, config, device)
    # Data problems surface before anything is written to the run directory.
    data = _tensor_splits(config, device)
    make_dir(run_dir)
    ensure_free_space(run_dir, checkpoint_bytes(model, resume), "writing the checkpoints")
    if resume:
        ckpt = read_checkpoint(run_dir / LAST)
        if ckpt.state is None or ckpt.optimizer_state is None:
            raise VaelabError(f"{run_dir / LAST} has no training state to resume from")
        model = build_model(ckpt, device)
        optimizer = make_optimizer(model, config, device)
        optimizer.load_state_dict(ckpt.optimizer_state)
        state = ckpt.state
        torch.set_rng_state(ckpt.rng["cpu"])
        if "cuda" in ckpt.rng and device.type == "cuda":
            torch.cuda.set_rng_state(ckpt.rng["cuda"])
    atomic_write_json(run_dir / CONFIG, config.to_dict())
    n_train = len(data["train_images"])
    steps = math.ceil(n_train / config.batch_size)
    train_step = TrainStep(
        model,
        optimizer,
        config,
        data["train_images"],
        data["train_labels"],
        shard=distributed.current_shard(),
    )
    _write_metrics(run_dir, state.history)

    def checkpoint_now() -> None:
        if not all(math.isfinite(v) for v in state.running.values()):  # never save a NaN
            raise _nan_error(run_dir, config, state.epoch, state.step, exact=False)
        save_checkpoint(run_dir / LAST, model, config, state, optimizer)

    while state.epoch < config.epochs:
        epoch = state.epoch
        if progress:
            progress.epoch_start(epoch, config.epochs, steps, state.step)
        started = time.perf_counter()
        running = _accumulator(device)
        if state.running:
            running += torch.tensor(
                [state.running[k] for k in _TERMS], dtype=running.dtype, device=device
            )
        stopped = False

        def on_step(step: int, sums: torch.Tensor) -> bool:
            nonlocal stopped
            state.step, state.global_step = step, state.global_step + 1
            # Reading the sums syncs an accelerator, so there they are checked every 50 steps
            # (and before every checkpoint); on the CPU every step, to name the exact step.
            if (device.type == "cpu" or state.global_step % 50 == 0) and not bool(
                torch.isfinite(sums).all()
            ):
                raise _nan_error(run_dir, config, state.epoch, step, exact=device.type == "cpu")
            if progress:
                # The running mean costs a device sync, so it is read every 25 steps only.
                seen = min(step * config.batch_size, n_train)
                progress.step(float(sums[0]) / seen if step % 25 == 0 else None)
            if config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
                state.running = dict(zip(_TERMS, sums.tolist(), strict=True))
                checkpoint_now()
            stopped = bool(stop_requested and stop_requested())
            if stopped:
                state.running = dict(zip(_TERMS, sums.tolist(), strict=True))
            return stopped

        sums, _ = train_epoch(
            model,
            optimizer,
            data["train_images"],
            data["train_labels"],
            config,
            epoch,
            start_step=state.step,
            running=running,
            on_step=on_step,
            train_step=train_step,
        )
        if stopped:
            checkpoint_now()
            raise TrainingInterrupted(
                f"stopped at epoch {epoch + 1}, step {state.step}; resume with "
                f"`vaelab train --resume {run_dir}`"
            )
        total = sums.tolist()
        if not all(math.isfinite(v) for v in total):
            raise _nan_error(run_dir, config, epoch, state.step, exact=False)
        record: dict[str, Any] = {"epoch": epoch + 1}
        record.update({f"train_{k}": total[i] / n_train for i, k in enumerate(_TERMS)})
        if len(data["val_images"]):
            val = evaluate(model, data["val_images"], data["val_labels"], config.binarize)
            record.update(
                val_loss=val["neg_elbo"],
                val_recon=val["recon_bce"],
                val_kl=val["kl"],
                val_mse=val["mse"],
            )
        record["seconds"] = time.perf_counter() - started
        key = record.get("val_loss", record["train_loss"])
        state.history.append(record)
        state.epoch, state.step, state.running = epoch + 1, 0, {}
        if state.best_val is None or key < state.best_val:
            state.best_val, state.best_epoch = key, epoch + 1
            save_checkpoint(run_dir / BEST, model, config, state)
        checkpoint_now()
        _write_metrics(run_dir, state.history)
        if progress:
            progress.epoch_end(record)
    if pictures:
        from vaelab.pictures.run_figures import write_run_figures

        write_run_figures(run_dir, model, data, config)
    return FitResult(run_dir, model, state.history, state.best_val)
