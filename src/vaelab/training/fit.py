"""Entry points: ``fit`` trains one configuration, ``fit_many`` several (stacked where possible).

Both run the one lifecycle of ``vaelab.training.lifecycle``; they only choose the ``Step``:
``TrainStep`` for one model, ``StackedStep`` for configs that can share a step (the study's
z_dim sweep: the same fully connected network, dataset, batch, learning rate and epochs), and
``ShardedStep`` for one rank of a torchrun run. On the CPU in fp32 a fully connected model
trains alone as a stack of one, whose step writes its gradient out instead of using autograd
(``vaelab.training.stacked_grad``), which is faster there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.data.tensors import DeviceSplits
from vaelab.device import resolve_precision
from vaelab.lr_schedules import LR_SCHEDULES, RESUME_FIXED
from vaelab.models import VAE, create_model, model_registry
from vaelab.notice import notice
from vaelab.runs.checkpoint import global_rng_state
from vaelab.runs.layout import RunDir
from vaelab.training import sharded
from vaelab.training.lifecycle import FitResult, Member, train_runs
from vaelab.training.options import RunOptions
from vaelab.training.stacked import stacking_blocker
from vaelab.training.stacked_grad import hand_gradient_pays
from vaelab.training.stacked_step import StackedStep
from vaelab.training.step import TrainStep, make_optimizer

__all__ = ["fit", "fit_many", "fresh_step", "stack_key", "stack_of_one", "trains_stacked"]

log = logging.getLogger(__name__)

# Settings a stacked batch shares; z_dim, beta, seed, out and the trackers may differ.
_SHARED = ("model", "dataset", "data_dir", "resize", "val_size", "epochs", "batch_size", "lr",
           "grad_clip", "kl_warmup", "binarize", "iw_samples", "n_pseudo_inputs", "precision",
           "device", "checkpoint_every", *RESUME_FIXED)


def stack_key(config: TrainConfig) -> tuple[Any, ...]:
    """Configs with equal keys (and the same resume position) train as one stacked batch."""
    return tuple(getattr(config, name) for name in _SHARED)


def _say_path(model: VAE, config: TrainConfig, device: torch.device) -> None:
    """For a plugin model on a device where the written-out gradient would pay: say that the
    model takes autograd's path instead, and why."""
    from vaelab.models.contract import is_builtin

    entry = model_registry.entries(discover=False).get(config.model)
    if entry is None or is_builtin(entry) or config.compile:
        return
    if not hand_gradient_pays(device, resolve_precision(config.precision, device)):
        return
    reason = stacking_blocker(model, config) or "it is trained alone"
    notice("%s: %s, so it trains with autograd (the eager step), not with the written-out "
           "gradient that only vaelab's fully connected VAEs have; the objective and the "
           "optimiser are the same", config.out, reason)


def _single_step(members: list[Member], data: DeviceSplits) -> TrainStep | StackedStep:
    """A stack of one where the written-out gradient pays (fp32 on the CPU), else TrainStep."""
    member = members[0]
    if stack_of_one(member.model, member.config, data.train_images.device):
        return StackedStep.for_members(members, data)
    _say_path(member.model, member.config, data.train_images.device)
    optimizer = member.restore_optimizer()
    member.restore_global_rng()
    return TrainStep(member.model, optimizer, member.config, data.train_images,
                     data.train_labels)


def stack_of_one(model: VAE, config: TrainConfig, device: torch.device) -> bool:
    """Whether ``fit`` trains this model as a stack of one (written-out gradient) on ``device``."""
    if config.compile or stacking_blocker(model, config, alone=True) is not None:
        return False
    return hand_gradient_pays(device, resolve_precision(config.precision, device))


def fresh_step(model: VAE, config: TrainConfig, images: torch.Tensor,
               labels: torch.Tensor | None,
               rng: dict[str, torch.Tensor] | None = None,
               graphs: bool | None = None) -> TrainStep | StackedStep:
    """The step ``fit`` trains a fresh ``model`` with on ``images``' device (for benchmarks).

    ``rng``: the random state its noise starts from (default: the global one, as ``fit``);
    ``graphs``: CUDA graphs for a ``TrainStep`` (None: its default).
    """
    device = images.device
    if stack_of_one(model, config, device):
        return StackedStep([model], [config], images, [rng or global_rng_state()], [None])
    return TrainStep(model, make_optimizer(model, config, device), config, images, labels,
                     graphs=graphs)


def fit(config: TrainConfig, options: RunOptions | None = None) -> FitResult:
    """Train ``config`` in ``config.out`` (resuming from its last checkpoint when asked)."""
    options = options or RunOptions()
    if sharded.launched():  # started by torchrun: one rank of a data-parallel run
        return sharded.fit_sharded(config, options)
    return train_runs([config], options, _single_step)[0]


def _position(config: TrainConfig, resume: bool) -> tuple[Any, ...]:
    """Where a run stands (epoch, step, global step, learning rate and the schedule's state),
    read from its checkpoint: only runs at one position share a step, an Adam and a schedule."""
    if not resume:
        return (0, 0, 0, config.lr, "null")
    from vaelab.runs.checkpoint import read_checkpoint

    ckpt = read_checkpoint(RunDir(config.out).last)
    state, optimizer = ckpt.state, ckpt.optimizer_state or {}
    lr = optimizer.get("param_groups", [{}])[0].get("lr", config.lr)
    schedule = json.dumps(ckpt.schedule_state, sort_keys=True)
    return (state.epoch, state.step, state.global_step, lr, schedule) if state \
        else (0, 0, 0, lr, schedule)


def _blocker(config: TrainConfig) -> str | None:
    schedule = LR_SCHEDULES.get(config.lr_schedule)
    if schedule.per_model:
        return f"a {schedule.name} schedule follows each model's own loss"
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return stacking_blocker(create_model(config.model_config()), config)


def trains_stacked(config: TrainConfig) -> bool:
    """Whether ``fit_many`` puts runs of ``config``'s settings into one stacked model (their
    epoch times are then the stack's, shared by every member)."""
    return _blocker(config) is None


def fit_many(configs: Sequence[TrainConfig], options: RunOptions | None = None
             ) -> list[FitResult]:
    """Train every config as ``fit`` would, stacking those that can share a step.

    ``options.resume`` is one flag for all configs or one per config; a resumed run that
    already reached its epoch count is not trained again. Returns one result per config, in
    order. The caller's random state is left as it was.
    """
    options = options or RunOptions()
    configs = list(configs)
    resumes = options.resumes(len(configs))
    from vaelab.training.lifecycle import check_run_dirs

    check_run_dirs(configs, resumes)
    groups: dict[tuple[Any, ...], list[int]] = {}
    alone: list[int] = []
    for i, (config, again) in enumerate(zip(configs, resumes, strict=True)):
        reason = _blocker(config)
        if reason is not None:
            log.info("%s trained alone: %s", config.out, reason)
            alone.append(i)
            continue
        groups.setdefault((*stack_key(config), _position(config, again)), []).append(i)
    results: dict[int, FitResult] = {}
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        for members in groups.values():
            log.info("training %d models stacked (z_dim %s)", len(members),
                     ", ".join(str(configs[i].z_dim) for i in members))
            part = RunOptions(resume=[resumes[i] for i in members], progress=options.progress,
                              stop_requested=options.stop_requested, pictures=options.pictures,
                              tracker_study=options.tracker_study)
            trained = train_runs([configs[i] for i in members], part, StackedStep.for_members)
            results.update(zip(members, trained, strict=True))
        for i in alone:
            part = RunOptions(resume=resumes[i], progress=options.progress,
                              stop_requested=options.stop_requested, pictures=options.pictures,
                              tracker_study=options.tracker_study)
            results[i] = fit(configs[i], part)
    return [results[i] for i in range(len(configs))]
