"""The z_dim sweep: ordinary run directories STUDY_DIR/z<d>, resumed or skipped as they stand.

``train_sweep`` is the one place that trains. It finds which runs are finished, which were
interrupted and which are new, and hands the unfinished ones to its ``trainer``: by default
``fit_stacked``, which trains them all at once as one stacked model
(``vaelab.training.fit_many``, the same updates each would get alone); ``fit_each`` is the
plain loop over ``vaelab.training.fit``. Both write the same run directories.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.runs.checkpoint import read_checkpoint
from vaelab.runs.layout import RunDir
from vaelab.training.lifecycle import FitResult
from vaelab.training.options import RunOptions

__all__ = [
    "SweepProgress", "SweepRun", "Trainer", "fit_each", "fit_stacked", "run_status", "train_sweep",
]

log = logging.getLogger(__name__)

# Settings that must agree between a run directory and the sweep that wants to reuse it.
_MUST_MATCH = ("model", "z_dim", "dataset", "batch_size", "lr", "seed")

Trainer = Callable[[Sequence[TrainConfig], RunOptions], Sequence[FitResult]]


class SweepProgress:
    """What the sweep reports: ``Progress`` per epoch, plus one call per run."""

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        """An epoch of the current run begins (as ``vaelab.training.Progress``)."""

    def step(self, loss: float | None) -> None:
        """One optimisation step was taken."""

    def epoch_end(self, record: dict[str, Any]) -> None:
        """An epoch ended with this metrics record."""

    def run_skipped(self, config: TrainConfig) -> None:
        """``config``'s run is already finished and will not be trained."""

    def run_start(self, config: TrainConfig, index: int, total: int, status: str) -> None:
        """Training of ``config`` (the index-th of total) begins; status is new or resumed."""

    def run_end(self, config: TrainConfig, seconds: float) -> None:
        """Training of ``config`` finished after ``seconds``."""


@dataclass
class SweepRun:
    """One z_dim of the sweep after training."""

    z_dim: int
    run_dir: Path
    status: str  # as found before training: "finished" (not touched), "resumed" or "new"


def run_status(config: TrainConfig) -> str:
    """"new", "resumed" (a checkpoint short of config.epochs) or "finished"."""
    run = RunDir(config.out)
    if not run.last.is_file():
        return "new"
    _check_compatible(config, run)
    state = read_checkpoint(run.last).state
    trained = state is not None and state.epoch >= config.epochs
    # A run stopped after its last epoch but before its pictures is resumed to write them.
    return "finished" if trained and run.pictures_done() else "resumed"


def _check_compatible(config: TrainConfig, run: RunDir) -> None:
    try:
        saved = run.read_config()
    except VaelabError:
        raise VaelabError(f"{run} holds a checkpoint but no readable {run.config.name}; move "
                          "it away or choose another --out") from None
    wanted = config.to_dict()
    differ = [k for k in _MUST_MATCH if saved.get(k) != wanted[k]]
    if differ:
        detail = ", ".join(f"{k}={saved.get(k)!r} (now {wanted[k]!r})" for k in differ)
        raise VaelabError(f"{run} was trained with other settings: {detail}; "
                          "use another --out or the same settings")


def _announce(configs: Sequence[TrainConfig], options: RunOptions) -> None:
    if isinstance(options.progress, SweepProgress):
        for index, (config, again) in enumerate(
                zip(configs, options.resumes(len(configs)), strict=True)):
            options.progress.run_start(config, index, len(configs),
                                       "resumed" if again else "new")


def fit_each(configs: Sequence[TrainConfig], options: RunOptions) -> list[FitResult]:
    """Train each config in turn with ``vaelab.training.fit``."""
    from vaelab.training import fit

    results = []
    resumes = options.resumes(len(configs))
    for index, (config, again) in enumerate(zip(configs, resumes, strict=True)):
        if isinstance(options.progress, SweepProgress):
            options.progress.run_start(config, index, len(configs), "resumed" if again else "new")
        started = time.perf_counter()
        results.append(fit(config, replace(options, resume=again)))
        if isinstance(options.progress, SweepProgress):
            options.progress.run_end(config, time.perf_counter() - started)
    return results


def fit_stacked(configs: Sequence[TrainConfig], options: RunOptions) -> list[FitResult]:
    """Train all configs at once with ``vaelab.training.fit_many`` (one stacked model)."""
    from vaelab.training import fit_many

    _announce(configs, options)
    started = time.perf_counter()
    results = fit_many(configs, options)
    if isinstance(options.progress, SweepProgress):
        for config in configs:
            options.progress.run_end(config, time.perf_counter() - started)
    return results


def train_sweep(
    configs: Sequence[TrainConfig],
    options: RunOptions | None = None,
    trainer: Trainer = fit_stacked,
) -> list[SweepRun]:
    """Bring every run of the sweep to its epoch count; finished runs are not touched.

    ``options.resume`` is decided here from what each run directory holds.
    """
    options = options or RunOptions()
    statuses = [run_status(c) for c in configs]
    for config, status in zip(configs, statuses, strict=True):
        log.info("z_dim=%d: %s (%s)", config.z_dim, status, config.out)
        if status == "finished" and isinstance(options.progress, SweepProgress):
            options.progress.run_skipped(config)
    pending = [(c, s) for c, s in zip(configs, statuses, strict=True) if s != "finished"]
    if pending:
        trainer([c for c, _ in pending],
                replace(options, resume=[s == "resumed" for _, s in pending]))
    return [SweepRun(c.z_dim, Path(c.out), s) for c, s in zip(configs, statuses, strict=True)]
