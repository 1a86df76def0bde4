"""The run directory: the one place that knows its file names and how they are written.

A run directory holds ``config.json`` (the resolved training config), ``metrics.jsonl`` (one JSON
record per finished epoch), ``last.safetensors`` (everything needed to resume),
``best.safetensors`` (the weights with the lowest validation loss), the pictures, ``train.lock``
while a training owns it, ``evaluation.json`` once ``vaelab evaluate`` has measured it,
``provenance.json`` (where the run's model code and data came from, one section each), and
``tensorboard/`` when that tracker is on. Everything else asks
``RunDir`` for these paths; every file is written atomically (a temp file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError
from vaelab.runs.atomic import (
    atomic_write_json,
    atomic_write_text,
    ensure_free_space,
    remove_stale_temps,
)
from vaelab.runs.lock import LOCK_NAME, RunLock

__all__ = ["BEST", "CONFIG", "DIGITS", "EVALUATION", "LAST", "LOSS_CURVES", "METRICS", "PICTURES",
           "PROVENANCE", "RECONSTRUCTIONS", "SAMPLES", "TENSORBOARD", "RunDir", "digit_samples"]

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.safetensors"
BEST = "best.safetensors"
TENSORBOARD = "tensorboard"
EVALUATION = "evaluation.json"
PROVENANCE = "provenance.json"
# The pictures a finished run holds; loss_curves.png is written last, so its presence marks a run
# whose training and pictures are complete.
RECONSTRUCTIONS, SAMPLES, LOSS_CURVES = "reconstructions.png", "samples.png", "loss_curves.png"
PICTURES = (RECONSTRUCTIONS, SAMPLES, LOSS_CURVES)
DIGITS = "digits.png"  # a conditional model's digit x style grid (`vaelab sample`)


def digit_samples(digit: int) -> str:
    """A conditional model's samples of one digit (`vaelab sample --digit D`)."""
    return f"samples_digit{digit}.png"


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk (it may not exist yet)."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # -- names ---------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def evaluation(self) -> Path:
        return self.path / EVALUATION

    @property
    def provenance(self) -> Path:
        return self.path / PROVENANCE

    def picture(self, name: str) -> Path:
        return self.path / name

    def checkpoint(self, which: str) -> Path:
        """``best`` or ``last``; ``best`` falls back to ``last`` for a run stopped early."""
        names = {"best": BEST, "last": LAST}
        if which not in names:
            raise VaelabError(f"unknown checkpoint {which!r}; choose best or last")
        path = self.path / names[which]
        if not path.is_file() and which == "best" and self.last.is_file():
            return self.last
        return path

    # -- state ---------------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether a training has written its resumable checkpoint here."""
        return self.last.exists()

    def pictures_done(self) -> bool:
        return self.picture(LOSS_CURVES).is_file()

    def files_to_share(self) -> list[Path]:
        """What another process needs to continue this run (checkpoints, config, metrics)."""
        return [p for p in (self.config, self.provenance, self.metrics, self.last, self.best)
                if p.is_file()]

    def artifacts(self) -> list[Path]:
        """The files a tracker uploads: config, metrics and pictures."""
        return [p for p in (self.config, self.metrics, *map(self.picture, PICTURES))
                if p.is_file()]

    # -- reading and writing -------------------------------------------------------------------
    def lock(self) -> RunLock:
        """Exclusive ownership for one training (a context manager; creates the folder)."""
        return RunLock(self.path)

    def remove_stale_temps(self) -> None:
        remove_stale_temps(self.path)

    def ensure_free_space(self, needed: int) -> None:
        ensure_free_space(self.path, needed, "writing the checkpoints")

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config, config)

    def read_config(self) -> dict[str, Any]:
        """config.json as a dict; a missing or unreadable file is a one-line error."""
        try:
            data = json.loads(self.config.read_text())
        except FileNotFoundError:
            raise VaelabError(f"{self.path} has no {CONFIG}; it is not a vaelab run "
                              "directory") from None
        except (OSError, ValueError):
            raise VaelabError(f"{self.config} is not readable JSON; restore it or train "
                              "again") from None
        if not isinstance(data, dict):
            raise VaelabError(f"{self.config} does not hold a configuration object")
        return data

    def record_evaluation(self, key: str, result: dict[str, Any]) -> None:
        """Keep ``vaelab evaluate``'s result under ``key`` (e.g. "test/best") in evaluation.json."""
        results = self.read_evaluations()
        results[key] = result
        atomic_write_json(self.evaluation, results)

    def read_evaluations(self) -> dict[str, Any]:
        """What ``vaelab evaluate`` measured, by "split/checkpoint" ({} when nothing yet)."""
        try:
            data = json.loads(self.evaluation.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise VaelabError(f"{self.evaluation} is not readable JSON") from None
        return data if isinstance(data, dict) else {}

    def record_provenance(self, section: str, value: dict[str, Any]) -> None:
        """Keep where one part of the run came from (e.g. "model", "data") in provenance.json."""
        sections = self.read_provenance()
        sections[section] = value
        atomic_write_json(self.provenance, sections)

    def read_provenance(self) -> dict[str, Any]:
        """provenance.json by section ({} for a run that records none, as older runs)."""
        try:
            data = json.loads(self.provenance.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise VaelabError(f"{self.provenance} is not readable JSON; restore it or train "
                              "again") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise VaelabError(f"{self.provenance} does not hold provenance sections")
        return data

    def write_metrics(self, history: Sequence[dict[str, Any]]) -> None:
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in history))

    def read_metrics(self) -> list[dict[str, Any]]:
        """The epoch records, oldest first ([] when there are none yet)."""
        if not self.metrics.is_file():
            return []
        try:
            records = [json.loads(line) for line in self.metrics.read_text().splitlines()
                       if line.strip()]
        except (OSError, ValueError):
            raise VaelabError(f"{self.metrics} is not readable JSON lines") from None
        if not all(isinstance(r, dict) for r in records):
            raise VaelabError(f"{self.metrics} holds something other than epoch records")
        return records
