"""What the run directories under a folder hold: one summary row per run, read-only.

A run is ``finished`` (its epochs done), ``interrupted`` (a resumable checkpoint short of its
epochs), ``locked`` (a live process is training it), ``started`` (a config but no checkpoint
yet) or ``corrupt`` (its files cannot be read; the row says why). Only checkpoint headers are
read, never the weights, and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError
from vaelab.runs.checkpoint import read_header
from vaelab.runs.layout import CONFIG, LAST, TENSORBOARD, RunDir
from vaelab.runs.lock import lock_holder

__all__ = ["COLUMNS", "RunSummary", "find_runs", "summarise"]

# Column name -> what it shows; the table's and --sort's vocabulary.
COLUMNS = {
    "run": "run directory",
    "status": "finished, interrupted, locked, started or corrupt",
    "model": "architecture",
    "z_dim": "latent units",
    "dataset": "dataset",
    "epochs": "epochs done / planned",
    "best_val": "best validation loss (nats)",
    "test_neg_elbo": "test negative ELBO (nats), when evaluated",
    "test_nll": "test NLL (nats), when evaluated with --nll",
    "hours": "training wall time",
}


@dataclass
class RunSummary:
    """One run directory in a row."""

    run: str
    status: str
    model: str | None = None
    z_dim: int | None = None
    dataset: str | None = None
    epochs_done: int | None = None
    epochs_planned: int | None = None
    best_val: float | None = None
    test_neg_elbo: float | None = None
    test_nll: float | None = None
    seconds: float | None = None
    problem: str | None = None  # why a corrupt run could not be read
    holder: str | None = None  # who holds a locked run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every folder under ``root`` (``root`` included) that holds a config or a checkpoint."""
    root = Path(root)
    if not root.is_dir():
        raise VaelabError(f"{root} is not a folder; give the folder that holds run directories")
    return sorted(_walk(root))


def _walk(folder: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    names = {e.name for e in entries}
    if CONFIG in names or LAST in names:
        yield folder
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.name != TENSORBOARD \
                and not entry.name.startswith("."):
            yield from _walk(Path(entry.path))


def summarise(path: Path, root: Path | None = None) -> RunSummary:
    """The row of one run directory."""
    run = RunDir(path)
    name = str(path.relative_to(root)) if root is not None and path != root else str(path)
    row = RunSummary(run=name or ".", status="started")
    try:
        config = run.read_config() if run.config.is_file() else None
        if config is not None:
            row.model, row.z_dim = config.get("model"), config.get("z_dim")
            row.dataset, row.epochs_planned = config.get("dataset"), config.get("epochs")
        history = run.read_metrics()
        row.seconds = float(sum(r.get("seconds", 0.0) for r in history)) if history else None
        if run.last.is_file():
            saved, state = read_header(run.last)
            row.model, row.z_dim, row.dataset = saved.model, saved.z_dim, saved.dataset
            row.epochs_planned = row.epochs_planned or saved.epochs
            if state is not None:
                row.epochs_done, row.best_val = state.epoch, state.best_val
            done = state is not None and row.epochs_planned is not None \
                and state.epoch >= row.epochs_planned
            row.status = "finished" if done else "interrupted"
        evaluated = run.read_evaluations()
        test = evaluated.get("test/best") or evaluated.get("test/last") or {}
        row.test_neg_elbo, row.test_nll = test.get("neg_elbo"), test.get("nll")
    except VaelabError as exc:
        row.status, row.problem = "corrupt", str(exc)
    holder = lock_holder(path)
    if holder is not None:
        row.status, row.holder = "locked", holder.describe()
    return row
