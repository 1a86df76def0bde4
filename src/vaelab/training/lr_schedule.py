"""A run's learning-rate schedule on its optimizer: stepped in one place, saved with the run.

The lifecycle (``vaelab.training.lifecycle``) owns one ``RunSchedule`` per training. It calls
``after_step()`` after every optimisation step and ``after_epoch(loss)`` when an epoch ends; the
schedule's ``unit`` (``vaelab.lr_schedules``) decides which of the two moves it, so a schedule is
never stepped per batch in one place and per epoch in another. Every path trains through the
same calls: one model (``TrainStep``), a stack with the written-out gradient and its own Adam
(``StackedStep``), one rank of a torchrun run (``ShardedStep``) — the schedule only sees the
step's optimizer.

Its state goes into the checkpoint as JSON (``state()``): torch's own ``state_dict`` with its
counters spelled out, and the rate of the last step taken. ``RunSchedule(..., saved=...)``
rebuilds the scheduler from the run's settings and loads that state, after checking that it
fits, so a run resumed after kill -9 takes exactly the steps an uninterrupted one takes.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.lr_schedules import LR_SCHEDULES

__all__ = ["RunSchedule", "decode_state", "encode_state", "graph_safe_lr"]

_COUNTER = "__counter__"  # how a Counter (MultiStepLR's milestones) is written in JSON


def graph_safe_lr(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Give a schedule's Adam its rate as a 0-dim tensor, for a step replayed from a CUDA graph.

    A graph bakes a float rate into the Adam kernel it captured; a tensor on the device is read
    at every replay, and torch's schedulers write into it in place. Constant rates stay floats.
    """
    if not LR_SCHEDULES.get(config.lr_schedule).changes_lr:
        return
    device = optimizer.param_groups[0]["params"][0].device
    for group in optimizer.param_groups:
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)


def encode_state(value: Any) -> Any:
    """A scheduler's ``state_dict`` as JSON values (Counters spelled out, tensors as floats)."""
    if isinstance(value, Counter):
        return {_COUNTER: [[encode_state(k), n] for k, n in sorted(value.items())]}
    if isinstance(value, Mapping):
        return {str(k): encode_state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_state(v) for v in value]
    if torch.is_tensor(value):
        return float(value)
    return value


def decode_state(value: Any) -> Any:
    """The inverse of ``encode_state``."""
    if isinstance(value, Mapping):
        if set(value) == {_COUNTER}:
            return Counter({int(k): int(n) for k, n in value[_COUNTER]})
        return {k: decode_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_state(v) for v in value]
    return value


def _misfit(fresh: Any, saved: Any, where: str = "state") -> str | None:
    """Where ``saved`` does not have the shape of ``fresh`` (a freshly built scheduler's state)."""
    number = (int, float)
    if isinstance(fresh, Counter) or isinstance(saved, Counter):
        return None if fresh == saved else f"{where} holds other milestones"
    if isinstance(fresh, Mapping):
        if not isinstance(saved, Mapping) or set(fresh) != set(saved):
            return f"{where} has other entries"
        for key in fresh:
            problem = _misfit(fresh[key], saved[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(fresh, list | tuple):
        if not isinstance(saved, list) or len(saved) != len(fresh):
            return f"{where} has another length"
        return next((p for f, s in zip(fresh, saved, strict=True)
                     if (p := _misfit(f, s, where))), None)
    if isinstance(fresh, bool) or isinstance(saved, bool):
        return None if type(fresh) is type(saved) else f"{where} is not a switch"
    if torch.is_tensor(fresh) or isinstance(fresh, number):
        return None if isinstance(saved, number) else f"{where} is not a number"
    return None if fresh == saved else f"{where} differs"


class RunSchedule:
    """The schedule ``config.lr_schedule`` on ``optimizer``, for steps of ``steps_per_epoch``.

    ``saved`` is the ``state()`` a checkpoint holds (None for a new run); ``source`` names that
    checkpoint in errors.
    """

    def __init__(self, config: TrainConfig, optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int, saved: Mapping[str, Any] | None = None,
                 source: str = "the checkpoint") -> None:
        self.spec = LR_SCHEDULES.get(config.lr_schedule)
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        where = float(group["lr"])  # a resumed optimizer's rate; building a scheduler resets it
        build = self.spec.build
        self.scheduler = build(optimizer, config, steps_per_epoch) if build else None
        self._last: Any = None  # the rate the latest optimisation step used
        if saved is not None:
            self._restore(saved, where, source)

    # -- the two moments a schedule moves -----------------------------------------------------
    def after_step(self) -> None:
        """An optimisation step was taken: a step-unit schedule moves."""
        if self.scheduler is None:
            return
        self._last = self.scheduler.get_last_lr()[0]  # what that step used (a copy, no sync)
        if self.spec.unit == "step":
            self._advance()

    def after_epoch(self, loss: float) -> None:
        """An epoch ended with ``loss``: an epoch-unit schedule moves."""
        if self.scheduler is not None and self.spec.unit == "epoch":
            self._advance(loss)

    def _advance(self, *metric: float) -> None:
        assert self.scheduler is not None
        # torch checks, at the first step of a scheduler (and of each part of a SequentialLR),
        # that Optimizer.step ran through the wrapper it installed; vaelab's CPU Adam
        # (training/adam.py) calls the same kernels directly, so that check would warn of an
        # order that is in fact right.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", message=r"Seems like `optimizer\.step\(\)` has "
                                    "been overridden", category=UserWarning)
            self.scheduler.step(*metric)

    def epoch_lr(self) -> float:
        """The rate of the epoch's last optimisation step (what metrics.jsonl records as lr)."""
        value = self._last if self._last is not None else self.optimizer.param_groups[0]["lr"]
        return float(value)

    # -- the checkpoint ------------------------------------------------------------------------
    def state(self) -> dict[str, Any] | None:
        """What the checkpoint keeps (None for the constant rate, which has no state)."""
        if self.scheduler is None:
            return None
        return {"schedule": self.spec.name, "scheduler": encode_state(self.scheduler.state_dict()),
                "last_lr": None if self._last is None else float(self._last)}

    def _restore(self, saved: Mapping[str, Any], where: float, source: str) -> None:
        def refuse(problem: str) -> VaelabError:
            return VaelabError(f"{source}: its learning-rate schedule state cannot resume this "
                               f"run ({problem}); use another checkpoint")

        if not isinstance(saved, Mapping) or saved.get("schedule") != self.spec.name:
            found = saved.get("schedule") if isinstance(saved, Mapping) else None
            raise refuse(f"it holds a {found!r} schedule, the run a {self.spec.name!r} one")
        if self.scheduler is None:
            return
        state = decode_state(saved.get("scheduler"))
        problem = _misfit(self.scheduler.state_dict(), state)
        last = saved.get("last_lr")
        if problem is None and last is not None and not isinstance(last, int | float):
            problem = "last_lr is not a number"
        if problem:
            raise refuse(problem)
        self.scheduler.load_state_dict(state)
        self._last = last
        for group in self.optimizer.param_groups:  # the rate the optimizer was saved with
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(where)
            else:
                group["lr"] = where
