"""The experiment trackers of a training's runs: what each is told, and when.

Each member run gets its own ``TrackerSet`` (``vaelab.trackers``), built from its config's
``trackers``: it is started when the run opens, told every epoch's metrics record (with the
reconstruction and sample grids every ``image_every`` epochs and at the last epoch), and
finished with the run's summary and its files once the pictures are written. A tracker that
fails is switched off with one warning; the run directory stays the source of truth. Runs
trained as a group (a study) share a parent record; a tracker that failed while opening it is
left out of every member, so an unreachable server costs one warning, not one per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import TrainConfig
from vaelab.models import VAE
from vaelab.runs.checkpoint import TrainState
from vaelab.runs.layout import RunDir
from vaelab.trackers import TrackedRun, TrackerOptions, TrackerSet

__all__ = ["RunTrackers", "StudyHandles", "grouped_runs", "open_trackers"]

_GRID_IMAGES = 50  # validation digits in a tracker's reconstruction grid (5 pairs of rows)


def open_trackers(config: TrainConfig) -> TrackerSet:
    """The config's trackers; an unknown one or a missing library is a one-line error now."""
    return TrackerSet.create(config.trackers, TrackerOptions(experiment=config.experiment))


class StudyHandles(dict[str, str]):
    """What ``grouped_runs`` yields: tracker name -> the handle of the group's parent record.

    ``lost`` names the trackers that failed while opening the parent; the members leave them
    out (the failure was already reported once).
    """

    def __init__(self, handles: Mapping[str, str], lost: Iterable[str] = ()) -> None:
        super().__init__(handles)
        self.lost = frozenset(lost)


class RunTrackers:
    """One run's trackers, bound to its directory and its picture images."""

    def __init__(self, trackers: TrackerSet, config: TrainConfig, run: RunDir,
                 state: TrainState, resumed: bool, study: Mapping[str, str] | None) -> None:
        lost: frozenset[str] = getattr(study, "lost", frozenset())
        if lost:
            trackers = TrackerSet({name: tracker for name, tracker in trackers.trackers.items()
                                   if name not in lost})
        self.trackers, self.config, self.run = trackers, config, run
        if trackers:
            trackers.start(TrackedRun(run.path, run.path.name, config.to_dict(), resumed=resumed,
                                      start_epoch=state.epoch), study=study)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def epoch(self, record: dict[str, Any], model: VAE, images: torch.Tensor,
              labels: torch.Tensor | None) -> None:
        if not self.trackers:
            return
        epoch = int(record["epoch"])
        due = epoch % self.config.image_every == 0 or epoch == self.config.epochs
        self.trackers.log_epoch(epoch, record, self._grids(model, images, labels) if due else None)

    def _grids(self, model: VAE, images: torch.Tensor,
               labels: torch.Tensor | None) -> dict[str, np.ndarray]:
        from vaelab.pictures.run_figures import reconstruction_grid, sample_grid

        return {"reconstructions": reconstruction_grid(model, images[:_GRID_IMAGES],
                                                       self.config.binarize,
                                                       None if labels is None
                                                       else labels[:_GRID_IMAGES]),
                "samples": sample_grid(model, 64, seed=self.config.seed)}

    def finish(self, state: TrainState) -> None:
        if self.trackers:
            self.trackers.finish(summary(state.history, state), self.run.artifacts())

    def close(self) -> None:
        self.trackers.close()


def summary(history: Sequence[Mapping[str, Any]], state: TrainState) -> dict[str, float]:
    """A finished run's results: the best validation loss, its epoch, the final losses."""
    out: dict[str, float] = {}
    if state.best_val is not None:
        out["best_val_loss"] = float(state.best_val)
    if state.best_epoch is not None:
        out["best_epoch"] = float(state.best_epoch)
    if history:
        last = history[-1]
        for key in ("train_loss", "val_loss", "val_recon", "val_kl"):
            if key in last:
                out[f"final_{key}"] = float(last[key])
    return out


@contextlib.contextmanager
def grouped_runs(config: TrainConfig, folder: Path,
                 settings: dict[str, Any]) -> Iterator[Mapping[str, str]]:
    """A parent record (an MLflow parent run) for runs trained as a group, such as a study.

    Yields the handles to pass as ``RunOptions.tracker_study`` (a ``StudyHandles``); the parent
    is finished when the block ends without an error, and marked as stopped early (MLflow:
    KILLED, as its interrupted members are) when it ends with one, such as an interruption.
    """
    trackers = open_trackers(config)
    handles = StudyHandles(trackers.start_study(folder, settings) if trackers else {},
                           lost=trackers.failed)
    try:
        yield handles
    except BaseException:
        if trackers:
            trackers.finish_study(handles, completed=False)
        raise
    if trackers:
        trackers.finish_study(handles)
