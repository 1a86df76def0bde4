"""Train several configs at once: ``fit_many``, the batched ``fit``.

Configs that differ only in ``z_dim``, ``beta`` and ``out`` (the study's z_dim sweep) share one
stacked model (``vaelab.training.stacked``): one batch of images per step, one batched matrix
product per layer, one fused Adam step over all parameters. Each model is initialised as ``fit``
would initialise it, sees the same batches, draws its reparameterisation noise from its own copy
of the RNG stream ``fit`` would use, and gets the same Adam update, so it ends where it would
end alone (to float rounding). Every run directory is exactly what ``fit`` writes — config.json,
metrics.jsonl, last.safetensors (with its own optimizer and RNG state, so ``vaelab train
--resume`` continues it alone), best.safetensors and the pictures.

Configs that cannot be stacked (other architectures, dynamic binarisation, ...) are trained one
after another with ``fit``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.device import resolve_device
from vaelab.errors import VaelabError
from vaelab.models import VAE, create_model
from vaelab.runs.atomic import atomic_write_json, make_dir
from vaelab.runs.checkpoint import (
    BEST,
    CONFIG,
    LAST,
    TrainState,
    build_model,
    read_checkpoint,
    save_checkpoint,
)
from vaelab.runs.lock import RunLock
from vaelab.training.loop import (
    _TERMS,
    FitResult,
    Progress,
    TrainingInterrupted,
    _accumulator,
    _tensor_splits,
    _write_metrics,
    epoch_permutation,
    evaluate,
    fit,
    kl_weight,
    make_optimizer,
)
from vaelab.training.stacked import StackedMLP, stacking_blocker
from vaelab.training.stacked_step import StackedStep

__all__ = ["fit_many", "stack_key"]

log = logging.getLogger(__name__)

# Settings a stacked batch shares; z_dim, beta and out may differ between its models.
_SHARED = ("model", "dataset", "data_dir", "val_size", "epochs", "batch_size", "lr", "seed",
           "grad_clip", "kl_warmup", "binarize", "iw_samples", "precision", "checkpoint_every")


def stack_key(config: TrainConfig) -> tuple[Any, ...]:
    """Configs with equal keys (and the same resume position) train as one stacked batch."""
    return tuple(getattr(config, name) for name in _SHARED)


@dataclass
class _Run:
    """One config's model and bookkeeping while it trains inside a stacked batch."""

    config: TrainConfig
    model: VAE
    state: TrainState
    lr: float  # the Adam learning rate in effect (a resumed optimizer keeps its own)
    cpu_rng: torch.Tensor  # the CPU RNG state fit would hold (saved in last.safetensors)
    noise: torch.Generator  # this model's reparameterisation noise, on the training device
    optimizer_state: dict[int, dict[str, Any]] | None  # Adam state from the checkpoint

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


def _open_run(config: TrainConfig, resume: bool, device: torch.device) -> _Run:
    """Everything ``fit`` sets up before loading data, in the same order (same RNG draws)."""
    run_dir = make_dir(config.out)
    torch.manual_seed(config.seed)
    model = create_model(config.model_config()).to(device)
    state, lr, optimizer_state = TrainState(), config.lr, None
    cpu_rng, device_rng = torch.get_rng_state(), None
    if resume:
        ckpt = read_checkpoint(run_dir / LAST)
        if ckpt.state is None or ckpt.optimizer_state is None:
            raise VaelabError(f"{run_dir / LAST} has no training state to resume from")
        model = build_model(ckpt, device)
        state, optimizer_state = ckpt.state, ckpt.optimizer_state["state"]
        lr = float(ckpt.optimizer_state["param_groups"][0]["lr"])
        cpu_rng, device_rng = ckpt.rng["cpu"], ckpt.rng.get(device.type)
    noise = torch.Generator(device=device)
    if device.type == "cpu":
        noise.set_state(cpu_rng)
    else:
        # fit's torch.manual_seed seeds the device generator too; a checkpoint may carry its state.
        noise.manual_seed(config.seed)
        if device_rng is not None:
            noise.set_state(device_rng)
    atomic_write_json(run_dir / CONFIG, config.to_dict())
    _write_metrics(run_dir, state.history)
    return _Run(config, model, state, lr, cpu_rng, noise, optimizer_state)


def _save_last(run: _Run, stacked: StackedMLP, optimizer: torch.optim.Optimizer,
               index: int) -> None:
    """last.safetensors of one model, holding the optimizer and RNG state its own fit would."""
    stacked.copy_to(index, run.model)
    device = next(run.model.parameters()).device
    single = make_optimizer(run.model, run.config, device)
    groups = single.state_dict()["param_groups"]
    for group in groups:
        group["lr"] = run.lr
    state = stacked.optimizer_state(optimizer, index)
    single.load_state_dict({"state": state, "param_groups": groups})
    # save_checkpoint records the global RNG state; show it this model's stream.
    torch.set_rng_state(run.noise.get_state() if device.type == "cpu" else run.cpu_rng)
    if device.type == "cuda":
        torch.cuda.set_rng_state(run.noise.get_state(), device)
    save_checkpoint(run.run_dir / LAST, run.model, run.config, run.state, single)


def _stacked_optimizer(stacked: StackedMLP, lr: float, device: torch.device,
                       graph: bool) -> torch.optim.Optimizer:
    """Adam as ``make_optimizer`` builds it; capturable when the step is a CUDA graph."""
    params = stacked.parameters()
    if graph:
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=True)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=device.type != "cpu")


def _train_group(
    runs: list[_Run],
    data: dict[str, torch.Tensor],
    progress: Progress | None,
    stop_requested: Callable[[], bool] | None,
    cuda_graph: bool,
) -> None:
    """Bring a batch of runs at the same position to their common epoch count."""
    config, lead = runs[0].config, runs[0].state
    device = data["train_images"].device
    images = data["train_images"]
    n_train, batch = len(images), config.batch_size
    steps = math.ceil(n_train / batch)
    graph = cuda_graph and device.type == "cuda"
    stacked = StackedMLP([r.model for r in runs], device)
    optimizer = _stacked_optimizer(stacked, runs[0].lr, device, graph)
    stacked.load_optimizer_states(optimizer, [r.optimizer_state for r in runs])
    order = torch.zeros(n_train, dtype=torch.long, device=device)
    offset = torch.zeros((), dtype=torch.long, device=device)

    def runner(size: int) -> StackedStep:
        return StackedStep(stacked, optimizer, images, order, offset, size, config.binarize,
                           config.grad_clip, config.precision, use_graph=graph)

    full = runner(batch)
    tail = runner(n_train - (steps - 1) * batch) if n_train % batch else full
    generators = [r.noise for r in runs]
    log.info("training %d models stacked (z_dim %s) on %s", len(runs),
             ", ".join(str(r.config.z_dim) for r in runs), device)

    def keep_running(sums: torch.Tensor) -> None:
        _check_finite(runs, sums, lead.epoch, lead.step)  # never save a NaN
        for run, row in zip(runs, sums.tolist(), strict=True):
            run.state.running = dict(zip(_TERMS, row, strict=True))

    def checkpoint_all() -> None:
        for index, run in enumerate(runs):
            _save_last(run, stacked, optimizer, index)

    while lead.epoch < config.epochs:
        epoch = lead.epoch
        if progress:
            progress.epoch_start(epoch, config.epochs, steps, lead.step)
        started = time.perf_counter()
        running = torch.stack([_accumulator(device) for _ in runs])
        for index, run in enumerate(runs):
            if run.state.running:
                running[index] += torch.tensor([run.state.running[k] for k in _TERMS],
                                               dtype=running.dtype, device=device)
        order.copy_(epoch_permutation(n_train, config.seed, epoch, device))
        offset.fill_(lead.step * batch)
        for step in range(lead.step, steps):
            step_fn = tail if step == steps - 1 else full
            weights = [kl_weight(r.config, epoch, step, steps) for r in runs]
            running += step_fn(generators, weights).to(running.dtype)
            for run in runs:
                run.state.step, run.state.global_step = step + 1, run.state.global_step + 1
            # A finiteness check syncs an accelerator: every step on the CPU, else every 50.
            if device.type == "cpu" or lead.global_step % 50 == 0:
                _check_finite(runs, running, epoch, step + 1)
            if progress:
                # The mean over models of the running loss; a device sync, so every 25 steps.
                seen = min((step + 1) * batch, n_train)
                progress.step(float(running[:, 0].mean()) / seen if (step + 1) % 25 == 0 else None)
            if config.checkpoint_every and lead.global_step % config.checkpoint_every == 0:
                keep_running(running)
                checkpoint_all()
            if stop_requested and stop_requested():
                keep_running(running)
                checkpoint_all()
                raise TrainingInterrupted(
                    f"stopped at epoch {epoch + 1}, step {lead.step}; resume with "
                    f"`vaelab train --resume DIR` for each of "
                    f"{', '.join(str(r.run_dir) for r in runs)}")
        _check_finite(runs, running, epoch, lead.step)
        totals = running.tolist()
        for index, (run, total) in enumerate(zip(runs, totals, strict=True)):
            stacked.copy_to(index, run.model)
            record: dict[str, Any] = {"epoch": epoch + 1}
            record.update({f"train_{k}": total[i] / n_train for i, k in enumerate(_TERMS)})
            if len(data["val_images"]):
                val = evaluate(run.model, data["val_images"], data["val_labels"],
                               run.config.binarize)
                record.update(val_loss=val["neg_elbo"], val_recon=val["recon_bce"],
                              val_kl=val["kl"], val_mse=val["mse"])
            # Wall time of the stacked epoch so far: all models trained together in it.
            record["seconds"] = time.perf_counter() - started
            key = record.get("val_loss", record["train_loss"])
            state = run.state
            state.history.append(record)
            state.epoch, state.step, state.running = epoch + 1, 0, {}
            if state.best_val is None or key < state.best_val:
                state.best_val, state.best_epoch = key, epoch + 1
                save_checkpoint(run.run_dir / BEST, run.model, run.config, state)
            _save_last(run, stacked, optimizer, index)
            _write_metrics(run.run_dir, state.history)
            if progress:  # the z_dim tells the stacked models' lines apart
                progress.epoch_end({**record, "z_dim": run.config.z_dim})


def _check_finite(runs: list[_Run], sums: torch.Tensor, epoch: int, step: int) -> None:
    bad = [str(run.run_dir) for run, ok in
           zip(runs, torch.isfinite(sums).all(dim=1).tolist(), strict=True) if not ok]
    if bad:
        raise VaelabError(
            f"the training loss of {', '.join(bad)} became NaN or infinite in epoch {epoch + 1} "
            f"by step {step}; the last good checkpoints are kept; train again with a lower --lr "
            "or with gradient clipping, e.g. --grad-clip 10")


def _check_run_dirs(configs: Sequence[TrainConfig], resumes: Sequence[bool]) -> None:
    """Refuse before anything is written: clashing outs, existing runs, missing checkpoints."""
    outs = [Path(c.out).resolve() for c in configs]
    for out in outs:
        if outs.count(out) > 1:
            raise VaelabError(f"two configs write to {out}; give every config its own --out")
    for config, again in zip(configs, resumes, strict=True):
        last = Path(config.out) / LAST
        if again and not last.is_file():
            raise VaelabError(f"checkpoint {last} is missing; train it first or do not resume it")
        if not again and last.exists():
            raise VaelabError(f"{config.out} already holds a run; continue it with `vaelab train "
                              f"--resume {config.out}` or choose another --out")


def _blocker(config: TrainConfig) -> str | None:
    with torch.random.fork_rng(devices=[]):
        return stacking_blocker(create_model(config.model_config()), config)


def fit_many(
    configs: Sequence[TrainConfig],
    resume: bool | Sequence[bool] = False,
    progress: Progress | None = None,
    stop_requested: Callable[[], bool] | None = None,
    pictures: bool = True,
    cuda_graph: bool = True,
) -> list[FitResult]:
    """Train every config as ``fit`` would, stacking those that can share a step.

    ``resume`` is one flag for all configs or one per config (as ``fit``'s: continue from the
    run's last.safetensors); a resumed run that already reached its epoch count is not trained
    again. ``progress`` sees each stacked epoch once (its step losses are the mean over the
    models) and one ``epoch_end`` per model. Returns one ``FitResult`` per config, in order.
    ``cuda_graph=False`` runs the CUDA step eagerly.
    """
    configs = list(configs)
    resumes = [resume] * len(configs) if isinstance(resume, bool) else list(resume)
    if len(resumes) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(resumes)} resume flags")
    _check_run_dirs(configs, resumes)
    devices = [resolve_device(c.device) for c in configs]
    blockers = [_blocker(c) for c in configs]
    results: dict[int, FitResult] = {}
    cuda = [d.index or 0 for d in set(devices) if d.type == "cuda"]
    data_cache: dict[tuple[Any, ...], dict[str, torch.Tensor]] = {}

    def data_for(i: int) -> dict[str, torch.Tensor]:
        c = configs[i]
        key = (c.dataset, c.data_dir, c.val_size, devices[i])
        if key not in data_cache:
            data_cache[key] = _tensor_splits(c, devices[i])
        return data_cache[key]

    with torch.random.fork_rng(devices=cuda), contextlib.ExitStack() as locks:
        runs: dict[int, _Run] = {}
        for i, (config, again, device) in enumerate(zip(configs, resumes, devices, strict=True)):
            if blockers[i] is None:
                data_for(i)  # as in fit, data problems surface before anything is written
                # As fit does: one training per run directory (fit takes its own lock).
                locks.enter_context(RunLock(config.out))
                runs[i] = _open_run(config, again, device)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, run in runs.items():
            position = (run.state.epoch, run.state.step, run.state.global_step, run.lr)
            groups.setdefault((*stack_key(run.config), devices[i], position), []).append(i)
        first_of = {members[0]: members for members in groups.values()}

        for i, config in enumerate(configs):
            if blockers[i] is not None:
                log.info("%s trained alone: %s", config.out, blockers[i])
                results[i] = fit(config, resume=resumes[i], progress=progress,
                                 stop_requested=stop_requested, pictures=pictures)
                continue
            group = first_of.get(i)
            if group is None:  # trained with the group of an earlier config
                continue
            members = [runs[j] for j in group]
            if members[0].state.epoch < config.epochs:
                _train_group(members, data_for(i), progress, stop_requested, cuda_graph)
            for j in group:
                run = runs[j]
                if pictures:
                    from vaelab.pictures.run_figures import write_run_figures

                    write_run_figures(run.run_dir, run.model, data_for(j), run.config)
                results[j] = FitResult(run.run_dir, run.model, run.state.history,
                                       run.state.best_val)
    return [results[i] for i in range(len(configs))]
