"""What the run directories under a folder hold: one summary row per run, read-only.

A run is ``finished`` (its epochs done), ``interrupted`` (a resumable checkpoint short of its
epochs), ``locked`` (a live process is training it), ``started`` (a config but no checkpoint
yet) or ``corrupt`` (its files cannot be read; the row says why). Only checkpoint headers are
read, never the weights, and nothing is written. Importing this module does not import torch
(the CLI reads ``COLUMNS`` to build its parser).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError
from vaelab.runs.layout import CONFIG, LAST, TENSORBOARD, RunDir
from vaelab.runs.lock import lock_holder

__all__ = ["COLUMNS", "STATUSES", "RunSummary", "find_runs", "summarise"]

STATUSES = ("finished", "interrupted", "locked", "started", "corrupt")

# Column name -> what it shows; the table's and --sort's vocabulary.
COLUMNS = {
    "run": "run directory, relative to the folder listed",
    "status": ", ".join(STATUSES),
    "model": "architecture",
    "z_dim": "latent units",
    "dataset": "dataset",
    "epochs": "epochs done / planned",
    "best_val": "best validation loss (nats)",
    "test_neg_elbo": "test negative ELBO (nats) of `vaelab evaluate`",
    "test_nll": "test NLL (nats) of `vaelab evaluate --nll`",
    "recipe": "the recipe it follows: full, compressed (epochs trained / the recipe's) or modified",
    "time": "training wall time (the epochs' seconds summed)",
}

# Folders that never hold run directories: a run's TensorBoard events, and MLflow's default
# artifact store, whose copies of config.json and metrics.jsonl would look like runs.
_NOT_RUNS = frozenset({TENSORBOARD, "mlruns"})


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
    recipe: str | None = None  # RecipeRun.brief() of a run that follows a recipe
    seconds: float | None = None
    problem: str | None = None  # why a corrupt run could not be read
    holder: str | None = None  # who holds a locked run
    model_origin: dict[str, Any] | None = None  # where its model came from (provenance.json)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def value(self, column: str) -> Any:
        """The value a column of ``COLUMNS`` sorts by."""
        if column not in COLUMNS:
            raise KeyError(column)
        return {"epochs": self.epochs_done, "time": self.seconds}.get(
            column, getattr(self, column, None))


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
        if entry.is_dir(follow_symlinks=False) and entry.name not in _NOT_RUNS \
                and not entry.name.startswith("."):
            yield from _walk(Path(entry.path))


def _typed(source: Path, data: Mapping[str, Any], key: str, kind: type) -> Any:
    """``data[key]`` when it is missing, null or of ``kind``; anything else is a damaged file."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise VaelabError(f"{source} gives {key} as {value!r}, not a {kind.__name__}")
    return value


def _seconds(run: RunDir) -> float | None:
    history = run.read_metrics()
    if not history:
        return None
    total = 0.0
    for record in history:
        seconds = record.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not math.isfinite(seconds):
            raise VaelabError(f"{run.metrics} gives seconds as {seconds!r}, not a number")
        total += seconds
    return total


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _recipe(config: Mapping[str, Any]) -> str | None:
    """How a config.json follows its recipe, in a few words (None: no recipe, or unreadable)."""
    from vaelab.config import TrainConfig
    from vaelab.recipes import recipe_run

    if not config.get("recipe"):
        return None
    try:
        followed = recipe_run(TrainConfig.from_dict(dict(config)))
    except VaelabError:
        return None
    return followed.brief() if followed else None


def summarise(path: Path, root: Path | None = None) -> RunSummary:
    """The row of one run directory; ``run`` is ``path`` relative to ``root`` when given."""
    from vaelab.runs.checkpoint import read_header

    run = RunDir(path)
    name = str(path.relative_to(root)) if root is not None and path != root else str(path)
    row = RunSummary(run=name, status="started")
    try:
        if run.config.is_file():
            config = run.read_config()
            row.model = _typed(run.config, config, "model", str)
            row.z_dim = _typed(run.config, config, "z_dim", int)
            row.dataset = _typed(run.config, config, "dataset", str)
            row.epochs_planned = _typed(run.config, config, "epochs", int)
            row.recipe = _recipe(config)
        row.seconds = _seconds(run)
        if run.last.is_file():
            saved, state = read_header(run.last)
            row.model, row.z_dim, row.dataset = saved.model, saved.z_dim, saved.dataset
            # config.json is rewritten at every start, so it holds the latest --epochs.
            row.epochs_planned = row.epochs_planned or saved.epochs
            if state is not None:
                row.epochs_done, row.best_val = state.epoch, state.best_val
            done = state is not None and state.epoch >= row.epochs_planned
            row.status = "finished" if done else "interrupted"
        with contextlib.suppress(VaelabError):  # only a hint for `vaelab runs`: never fatal
            row.model_origin = run.read_provenance().get("model")
        evaluated = run.read_evaluations()
        test = evaluated.get("test/best") or evaluated.get("test/last") or {}
        if isinstance(test, Mapping):
            row.test_neg_elbo = _number(test.get("neg_elbo"))
            row.test_nll = _number(test.get("nll"))
    except VaelabError as exc:
        row.status, row.problem = "corrupt", str(exc)
    holder = lock_holder(path)
    if holder is not None:
        row.status, row.holder = "locked", holder.describe()
    return row
