"""TensorBoard: event files in RUN_DIR/tensorboard/, written with torch's ``SummaryWriter``.

Per epoch: one scalar per metrics.jsonl key at ``step=epoch`` ("train_loss" becomes
"loss/train", so train and validation sit side by side), and the picture grids when given.
At ``finish``: the config as hyperparameters with the summary as their metrics (hparams plugin),
in the same run, so ``tensorboard --logdir STUDY_DIR`` compares a sweep's runs in one table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaelab.runs.layout import RunDir
from vaelab.trackers.base import (
    Requirement,
    TrackedRun,
    TrackerOptions,
    flat_params,
    register_tracker,
)

if TYPE_CHECKING:
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["SUMMARY_PREFIX", "TensorBoardTracker", "image_tag", "scalar_tag"]

SUMMARY_PREFIX = "summary/"  # scalar tags of the final results, the hparams plugin's metrics
_SPLITS = ("train", "val", "test")
_EVENT_FILE_PREFIX = "events.out.tfevents."


def scalar_tag(key: str) -> str:
    """The scalar tag of a metrics.jsonl key: "val_kl" -> "kl/val"; others unchanged."""
    split, _, term = key.partition("_")
    return f"{term}/{split}" if split in _SPLITS and term else key


def image_tag(name: str) -> str:
    return f"images/{name}"


def _wait_for_a_later_second(log_dir: Path) -> None:
    # TensorBoard reads a run's event files in name order, and a name starts with the second
    # its writer opened. A writer opened in the same second as an earlier one could sort first,
    # and then its purge marker would be read before the stale events it must discard.
    seconds = []
    for path in log_dir.glob(_EVENT_FILE_PREFIX + "*"):
        stamp = path.name[len(_EVENT_FILE_PREFIX) :].split(".", 1)[0]
        if stamp.isdigit():
            seconds.append(int(stamp))
    if seconds:
        delay = max(seconds) + 1 - time.time()
        if delay > 0:
            time.sleep(delay)


@register_tracker("tensorboard", Requirement("tensorboard", "TensorBoard", "tensorboard"))
class TensorBoardTracker:
    """Writes RUN_DIR/tensorboard/; a resumed run discards events past its last checkpoint."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self._writer: SummaryWriter | None = None
        self._config: dict[str, Any] = {}
        self._last_epoch = 0

    def _open(self) -> SummaryWriter:
        if self._writer is None:
            raise RuntimeError("TensorBoardTracker.start was not called")
        return self._writer

    def start(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = RunDir(run.run_dir).tensorboard
        _wait_for_a_later_second(log_dir)
        # Events for epochs after the last checkpoint (a crashed writer's, or a run started
        # afresh in the same folder) are stale: the purge step makes TensorBoard drop every
        # earlier-written event at or after it, so each step keeps exactly one value.
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=run.start_epoch + 1)
        self._config = run.config
        self._last_epoch = run.start_epoch

    def log_epoch(
        self, epoch: int, record: Mapping[str, float], images: Mapping[str, np.ndarray] | None
    ) -> None:
        writer = self._open()
        for key, value in record.items():
            if key != "epoch":
                writer.add_scalar(scalar_tag(key), float(value), global_step=epoch)
        for name, grid in (images or {}).items():
            writer.add_image(image_tag(name), grid, global_step=epoch, dataformats="HW")
        writer.flush()  # each epoch is on disk before the next starts: live curves, crash-safe
        self._last_epoch = epoch

    def finish(self, summary: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        # The artifacts are already here as images; the hparams plugin gets config and results.
        from torch.utils.tensorboard.summary import hparams

        writer = self._open()
        metrics = {SUMMARY_PREFIX + key: float(value) for key, value in summary.items()}
        experiment, session_start, session_end = hparams(  # type: ignore[no-untyped-call]
            flat_params(self._config), metrics
        )
        # SummaryWriter.add_hparams would write these into a new timestamped sub-run; writing
        # them here keeps config, curves and results in the one run TensorBoard shows.
        file_writer = writer.file_writer
        if file_writer is None:
            raise RuntimeError("the TensorBoard writer is closed")
        for proto in (experiment, session_start, session_end):
            file_writer.add_summary(proto, self._last_epoch)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, global_step=self._last_epoch)
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def start_study(self, study_dir: Path, config: dict[str, Any]) -> str | None:
        return None  # each member writes its own run: `tensorboard --logdir STUDY_DIR` overlays

    def finish_study(self, handle: str, completed: bool = True) -> None:
        return None

    def log_evaluation(self, run_dir: Path, metrics: Mapping[str, float]) -> None:
        # Test metrics have no epoch to plot against; they go to the run directory and MLflow.
        return None
