"""The run lifecycle: one loop for one model, a stack of models, and torchrun processes.

For every member run it opens (or resumes) the run directory, restores the random state,
trains epoch by epoch — recording each epoch, keeping ``best`` and ``last`` checkpoints,
stopping on NaN or on request — and writes the pictures. Only the ``Step`` differs between a
single model (``TrainStep``), a stack (``StackedStep``) and a rank of a torchrun run
(``ShardedStep``); ``make_step`` builds it from the opened members.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.data.datasets import Splits, load_splits
from vaelab.data.provenance import compare
from vaelab.data.tensors import DeviceSplits, to_device
from vaelab.device import resolve_device
from vaelab.errors import VaelabError
from vaelab.evaluation.elbo import evaluate
from vaelab.lr_schedules import LR_SCHEDULES, resume_problem
from vaelab.models import VAE, create_model
from vaelab.models.contract import check_behaviour
from vaelab.recipes import recipe_run
from vaelab.runs.checkpoint import (
    TrainState,
    checkpoint_bytes,
    model_origin,
    read_checkpoint,
    save_checkpoint,
)
from vaelab.runs.layout import RunDir
from vaelab.runs.rebuild import build_model
from vaelab.training.epoch import Step, accumulator, train_epoch
from vaelab.training.lr_schedule import RunSchedule
from vaelab.training.options import RunOptions
from vaelab.training.schedule import steps_per_epoch
from vaelab.training.step import make_optimizer
from vaelab.training.tracking import RunTrackers, open_trackers

__all__ = ["CHECK_IMAGES", "FitResult", "Member", "TrainingInterrupted", "check_data_fits",
           "check_distinct", "check_model_on", "check_run_dirs", "train_runs"]

_TERMS = ("loss", "recon", "kl")


class TrainingInterrupted(VaelabError):
    """Raised when a stop was requested; the resumable checkpoints have been written."""


@dataclass
class FitResult:
    """A trained run: its directory, its model and its epoch records."""

    run_dir: Path
    model: VAE
    history: list[dict[str, Any]]
    best_val: float | None


@dataclass
class Member:
    """One run of a training: its config, directory, model and where it stands."""

    config: TrainConfig
    run: RunDir
    model: VAE
    state: TrainState
    optimizer_state: dict[str, Any] | None  # the checkpoint's Adam state (None: a fresh run)
    rng: dict[str, torch.Tensor]  # the generator states its noise continues from
    schedule_state: dict[str, Any] | None = None  # the checkpoint's learning-rate schedule

    def restore_optimizer(self) -> torch.optim.Optimizer:
        """The run's Adam, with the checkpoint's state when resuming."""
        device = next(self.model.parameters()).device
        optimizer = make_optimizer(self.model, self.config, device)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        return optimizer

    def restore_global_rng(self) -> None:
        """Set torch's global generators to the run's state (a single model draws from them)."""
        torch.set_rng_state(self.rng["cpu"])
        device = next(self.model.parameters()).device
        if device.type == "cuda" and "cuda" in self.rng:
            torch.cuda.set_rng_state(self.rng["cuda"])


MakeStep = Callable[[list[Member], DeviceSplits], Step]


def check_distinct(configs: Sequence[TrainConfig]) -> None:
    """Refuse two configs that would write into one run directory."""
    outs = [Path(c.out).resolve() for c in configs]
    for out in outs:
        if outs.count(out) > 1:
            raise VaelabError(f"two configs write to {out}; give every config its own --out")


def check_run_dirs(configs: Sequence[TrainConfig], resumes: Sequence[bool]) -> None:
    """Refuse before anything is written: clashing outs, existing runs, missing checkpoints."""
    check_distinct(configs)
    for config, again in zip(configs, resumes, strict=True):
        run = RunDir(config.out)
        if again and not run.last.is_file():
            raise VaelabError(f"checkpoint {run.last} is missing; train it first or do not "
                              "resume it")
        if not again and run.holds_run():
            raise VaelabError(f"{run} already holds a run; continue it with `vaelab train "
                              f"--resume {run}` or choose another --out")


# Images of the first training batch a new model is checked on before it trains.
CHECK_IMAGES = 32


def check_model_on(model: VAE, data: DeviceSplits) -> None:
    """The model contract (``vaelab.models.contract``) on the first training images."""
    images = data.train_images[:CHECK_IMAGES]
    x = images.unsqueeze(1).to(torch.float32).div(255.0)
    labels = None if data.train_labels is None else data.train_labels[:CHECK_IMAGES].long()
    check_behaviour(model, x, labels)


def check_data_fits(configs: Sequence[TrainConfig], resumes: Sequence[bool],
                    splits: Splits) -> None:
    """Refuse, before anything is written, a conditional model on unlabelled data and a resumed
    run whose data changed since it started."""
    for config, again in zip(configs, resumes, strict=True):
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            conditional = create_model(config.model_config()).conditional
        if conditional and not splits.labelled:
            raise VaelabError(f"the {config.model} model is conditioned on labels, and "
                              f"{splits.name} has none; choose a model that is not "
                              "conditional (e.g. --model mlp), or labelled data")
        if again:
            change = compare(RunDir(config.out).read_provenance().get("data"),
                             splits.provenance)
            if change is not None:
                raise VaelabError(f"{change.describe()}; resuming would go on "
                                  f"with other images; restore the data, or train a new run "
                                  "with another --out")


def _open_member(config: TrainConfig, resume: bool, device: torch.device,
                 splits: Splits, data: DeviceSplits) -> Member:
    """Build (or resume) one run's model and state; the run directory is already locked.

    The model is checked against the contract before anything is written, so a model that
    breaks it leaves the run directory as it was.
    """
    run = RunDir(config.out)
    run.remove_stale_temps()
    torch.manual_seed(config.seed)
    # A conditional model has one input per class of the data (10 for the registered sets).
    classes = len(splits.class_names) if splits.labelled else None
    model = create_model(config.model_config(), num_classes=classes).to(device)
    check_model_on(model, data)  # its random draws are undone: the run's noise is unchanged
    # The noise of a run continues the global stream from here, as if nothing else drew.
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    state, optimizer_state, schedule_state = TrainState(), None, None
    run.ensure_free_space(checkpoint_bytes(model, resume))
    if resume:
        ckpt = read_checkpoint(run.last)
        if ckpt.state is None or ckpt.optimizer_state is None:
            raise VaelabError(f"{run.last} has no training state to resume from")
        problem = resume_problem(ckpt.config, config)
        if problem:
            raise VaelabError(f"{run.last}: {problem}")
        if LR_SCHEDULES.get(config.lr_schedule).changes_lr and ckpt.schedule_state is None:
            raise VaelabError(f"{run.last} holds no state of its {config.lr_schedule} "
                              "learning-rate schedule; it cannot be resumed exactly")
        model = build_model(ckpt, device)
        state, optimizer_state, rng = ckpt.state, ckpt.optimizer_state, dict(ckpt.rng)
        schedule_state = ckpt.schedule_state
    run.write_config(config.to_dict())
    origin = model_origin(config.model)
    if origin is not None:
        run.record_provenance("model", origin)
    run.record_provenance("data", splits.provenance)
    followed = recipe_run(config)
    if followed is not None:
        run.record_provenance("recipe", followed.to_dict())
    run.write_metrics(state.history)
    return Member(config, run, model, state, optimizer_state, rng, schedule_state)


def train_runs(configs: Sequence[TrainConfig], options: RunOptions,
               make_step: MakeStep) -> list[FitResult]:
    """Train ``configs`` together with the Step that ``make_step`` builds; one result each.

    Every run directory is locked for the whole training, so a second process pointed at it
    is refused; temp files a killed writer left there are removed first. Data problems and
    clashing run directories surface before anything is written: the data is read and checked
    before any run directory is touched, and a dataset path is recorded as an absolute path.
    """
    configs = list(configs)
    resumes = options.resumes(len(configs))
    tracker_sets = [open_trackers(c) for c in configs]  # a missing library fails here, first
    check_distinct(configs)
    first = configs[0]
    splits = load_splits(first.dataset, first.data_dir, first.val_size, resize=first.resize)
    configs = [replace(c, dataset=splits.name) for c in configs]
    check_data_fits(configs, resumes, splits)
    with contextlib.ExitStack() as stack:
        # Locked first, so a second training pointed at a live run is told it is in use.
        for run_config in configs:
            stack.enter_context(RunDir(run_config.out).lock())
        check_run_dirs(configs, resumes)
        config = configs[0]
        device = resolve_device(config.device)
        data = to_device(splits, device)
        members = [_open_member(run_config, again, device, splits, data)
                   for run_config, again in zip(configs, resumes, strict=True)]
        step = make_step(members, data)
        # Trackers are told even when nothing is left to train: a run stopped after its last
        # epoch but before its end was reported is finished in the trackers on resume.
        trackers = [RunTrackers(tracker_set, member.config, member.run, member.state, again,
                                options.tracker_study)
                    for member, tracker_set, again in zip(members, tracker_sets, resumes,
                                                          strict=True)]
        for tracked in trackers:
            stack.callback(tracked.close)  # a no-op once finished
        if members[0].state.epoch < config.epochs:
            # Stacked members stand at one position, so they share one schedule state.
            lead = members[0]
            schedule = RunSchedule(config, step.optimizer,
                                   steps_per_epoch(step.n_train, config.batch_size),
                                   lead.schedule_state, source=str(lead.run.last))
            _Loop(members, step, data, options, trackers, schedule).run()
        models = [step.member_model(i) for i in range(len(members))]
        if options.pictures:
            from vaelab.pictures.run_figures import write_run_figures

            images, labels = data.picture_split()
            for member, model in zip(members, models, strict=True):
                write_run_figures(member.run, model, images[:100],
                                  None if labels is None else labels[:100],
                                  member.state.history, member.config)
        for member, tracked in zip(members, trackers, strict=True):
            tracked.finish(member.state)
    return [FitResult(m.run.path, model, m.state.history, m.state.best_val)
            for m, model in zip(members, models, strict=True)]


class _Loop:
    """The epochs of one training: steps, records, checkpoints, NaN guard, stop requests."""

    def __init__(self, members: list[Member], step: Step, data: DeviceSplits,
                 options: RunOptions, trackers: list[RunTrackers], schedule: RunSchedule) -> None:
        self.members, self.step, self.data, self.options = members, step, data, options
        self.trackers, self.schedule = trackers, schedule
        self.config = members[0].config
        self.lead = members[0].state  # every member stands at the same position
        self.steps = steps_per_epoch(step.n_train, self.config.batch_size)
        self.device = data.device

    def run(self) -> None:
        while self.lead.epoch < self.config.epochs:
            self._epoch(self.lead.epoch)

    def _epoch(self, epoch: int) -> None:
        progress = self.options.progress
        if progress:
            progress.epoch_start(epoch, self.config.epochs, self.steps, self.lead.step)
        # A resumed epoch's time includes what it took before the interruption.
        started = time.perf_counter() - self.lead.running_seconds
        running = accumulator(len(self.members), self.device)
        for row, member in zip(running, self.members, strict=True):
            if member.state.running:
                row += torch.tensor([member.state.running[k] for k in _TERMS],
                                    dtype=running.dtype, device=self.device)
        stopped = False

        def on_step(done: int, sums: torch.Tensor) -> bool:
            nonlocal stopped
            self.schedule.after_step()  # first, so every checkpoint holds the schedule moved on
            for member in self.members:
                member.state.step, member.state.global_step = done, member.state.global_step + 1
            # Reading the sums syncs an accelerator, so there they are checked every 50 steps
            # (and before every checkpoint); on the CPU every step, to name the exact step.
            exact = self.device.type == "cpu"
            if exact or self.lead.global_step % 50 == 0:
                self._check_finite(sums, epoch, done, exact)
            if progress:
                # The running mean costs a device sync, so it is read every 25 steps only.
                seen = min(done * self.config.batch_size, self.step.n_train)
                progress.step(float(sums[:, 0].mean()) / seen if done % 25 == 0 else None)
            every = self.config.checkpoint_every
            if every and self.lead.global_step % every == 0:
                self._keep_running(sums, epoch, done, started)
                self._save_all_last()
            stopped = bool(self.options.stop_requested and self.options.stop_requested())
            if stopped:
                self._keep_running(sums, epoch, done, started)
            return stopped

        sums, _ = train_epoch(self.step, epoch, self.lead.step, running, on_step)
        if stopped:
            self._save_all_last()
            raise TrainingInterrupted(self._stopped_message(epoch))
        self._check_finite(sums, epoch, self.lead.step, exact=False)
        self._end_epoch(epoch, sums.tolist(), started)

    def _end_epoch(self, epoch: int, totals: list[list[float]], started: float) -> None:
        n_train = self.step.n_train
        records = []
        for index, (member, total) in enumerate(zip(self.members, totals, strict=True)):
            record: dict[str, Any] = {"epoch": epoch + 1}
            record.update({f"train_{k}": total[i] / n_train for i, k in enumerate(_TERMS)})
            if len(self.data.val_images):
                val = evaluate(self.step.member_model(index), self.data.val_images,
                               self.data.val_labels, member.config.binarize)
                record.update(val_loss=val["neg_elbo"], val_recon=val["recon_bce"],
                              val_kl=val["kl"], val_mse=val["mse"])
            records.append(record)
        seconds = time.perf_counter() - started  # the epoch's steps and evaluations
        lr = self.schedule.epoch_lr()
        # A plateau schedule follows its one model's loss (it is never shared by a stack).
        self.schedule.after_epoch(records[0].get("val_loss", records[0]["train_loss"]))
        for index, (member, record) in enumerate(zip(self.members, records, strict=True)):
            record["seconds"] = seconds
            record["lr"] = lr
            state = member.state
            state.history.append(record)
            state.epoch, state.step, state.running = epoch + 1, 0, {}
            state.running_seconds = 0.0
            key = record.get("val_loss", record["train_loss"])
            if state.best_val is None or key < state.best_val:
                state.best_val, state.best_epoch = key, epoch + 1
                save_checkpoint(member.run.best, self.step.member_model(index), member.config,
                                state)
            self._save_last(index)
            member.run.write_metrics(state.history)
            if self.options.progress:  # the z_dim tells the stacked models' lines apart
                shown = {**record, "z_dim": member.config.z_dim} if len(self.members) > 1 \
                    else record
                self.options.progress.epoch_end(shown)
            if self.trackers[index]:  # the grids are drawn only for a tracker that takes them
                images, labels = self.data.picture_split()
                self.trackers[index].epoch(record, self.step.member_model(index), images, labels)

    # -- checkpoints ---------------------------------------------------------------------
    def _save_last(self, index: int) -> None:
        member = self.members[index]
        save_checkpoint(member.run.last, self.step.member_model(index), member.config,
                        member.state, self.step.member_optimizer(index),
                        self.step.member_rng(index), self.schedule.state())

    def _save_all_last(self) -> None:
        for index in range(len(self.members)):
            self._save_last(index)

    def _keep_running(self, sums: torch.Tensor, epoch: int, done: int, started: float) -> None:
        """Record the epoch's partial sums and its seconds so far in each state (never a NaN:
        checked first)."""
        self._check_finite(sums, epoch, done, exact=False)
        seconds = time.perf_counter() - started
        for member, row in zip(self.members, sums.tolist(), strict=True):
            member.state.running = dict(zip(_TERMS, row, strict=True))
            member.state.running_seconds = seconds

    # -- messages ------------------------------------------------------------------------
    def _check_finite(self, sums: torch.Tensor, epoch: int, step: int, exact: bool) -> None:
        finite = torch.isfinite(sums).all(dim=1).tolist()
        bad = [m for m, ok in zip(self.members, finite, strict=True) if not ok]
        if not bad:
            return
        where = f"at epoch {epoch + 1}, step {step}" if exact \
            else f"in epoch {epoch + 1} by step {step}"
        if len(self.members) == 1:
            last = self.members[0].run.last
            whose = "the training loss"
            kept = (f"the last good checkpoint is kept in {last}" if last.is_file()
                    else "no checkpoint had been written yet")
        else:
            whose = f"the training loss of {', '.join(str(m.run) for m in bad)}"
            kept = "the last good checkpoints are kept"
        raise VaelabError(f"{whose} became NaN or infinite {where}; {kept}; train again with a "
                          f"lower --lr (now {self.config.lr:g}) or with gradient clipping, e.g. "
                          "--grad-clip 10")

    def _stopped_message(self, epoch: int) -> str:
        runs = [str(m.run) for m in self.members]
        how = (f"`vaelab train --resume {runs[0]}`" if len(runs) == 1 else
               f"`vaelab train --resume DIR` for each of {', '.join(runs)}")
        return f"stopped at epoch {epoch + 1}, step {self.lead.step}; resume with {how}"
