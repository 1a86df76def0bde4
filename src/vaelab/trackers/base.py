"""What the training loop calls on an experiment tracker, and the guard that keeps it harmless.

A tracker mirrors a run directory into an outside tool (TensorBoard, MLflow). The run directory
stays the source of truth: a tracker only reads what it is handed, and a tracker that fails is
switched off with one warning while training goes on (``TrackerSet``).

Trackers are created by name through ``tracker_registry``, filled by ``register_tracker``.
Each entry names the library it needs and the ``pip`` extra that installs it, so
``require_trackers`` can refuse a missing one before training starts without importing it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from vaelab.errors import VaelabError
from vaelab.registry import Registry

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_EXPERIMENT",
    "Requirement",
    "TrackedRun",
    "Tracker",
    "TrackerOptions",
    "TrackerSet",
    "TrackerSpec",
    "flat_params",
    "register_tracker",
    "require_trackers",
    "tracker_registry",
]

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "vaelab"


@dataclass(frozen=True)
class TrackedRun:
    """One training run as a tracker sees it."""

    run_dir: Path  # the run directory, the source of truth
    name: str  # shown in the tracker's UI, e.g. "z20" or the folder name
    config: dict[str, Any]  # the resolved training config (what config.json holds)
    resumed: bool = False  # continues a run that was stopped
    start_epoch: int = 0  # epochs already complete (0 for a new run)
    parent: str | None = None  # this tracker's handle from ``start_study``, for study members


@dataclass(frozen=True)
class TrackerOptions:
    """Settings shared by every tracker of one command."""

    experiment: str = DEFAULT_EXPERIMENT  # MLflow experiment name (TensorBoard has none)


class Tracker(Protocol):
    """The calls a run makes, in order: ``start``, ``log_epoch`` per epoch, ``finish`` or ``close``.

    A study calls ``start_study`` first, passes the handle it returned as ``TrackedRun.parent``
    of each member run, and calls ``finish_study`` at the end.
    """

    def start(self, run: TrackedRun) -> None:
        """Open (or, when ``run.resumed``, reopen) the tracker's record of ``run``."""

    def log_epoch(
        self, epoch: int, record: Mapping[str, float], images: Mapping[str, np.ndarray] | None
    ) -> None:
        """Log one metrics.jsonl ``record``; ``images`` maps a name to a uint8 (H, W) grid."""

    def finish(self, summary: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        """The run completed: record ``summary`` as its results, upload ``artifacts``, close."""

    def close(self) -> None:
        """The run stopped early (interrupted or failed): flush and close, not marked finished."""

    def start_study(self, study_dir: Path, config: dict[str, Any]) -> str | None:
        """Open a parent record for a study; returns its handle, or None when not needed."""

    def finish_study(self, handle: str, completed: bool = True) -> None:
        """Close the parent record ``start_study`` returned; ``completed`` False: it stopped
        early (interrupted or failed) and may be resumed."""

    def log_evaluation(self, run_dir: Path, metrics: Mapping[str, float]) -> None:
        """Add test-set ``metrics`` to the record of the finished run in ``run_dir``."""


@dataclass(frozen=True)
class Requirement:
    """The library a tracker needs, and how the user installs it."""

    module: str  # top-level module looked up with importlib.util.find_spec
    library: str  # its name in messages, e.g. "MLflow"
    extra: str  # vaelab's optional-dependency group that installs it


@dataclass(frozen=True)
class TrackerSpec:
    factory: Callable[[TrackerOptions], Tracker]
    requirement: Requirement


tracker_registry: Registry[TrackerSpec] = Registry("tracker")

_Factory = TypeVar("_Factory", bound=Callable[[TrackerOptions], Tracker])


def register_tracker(name: str, requirement: Requirement) -> Callable[[_Factory], _Factory]:
    """Class decorator: ``--tracker name`` builds this class with the command's options."""

    def decorator(factory: _Factory) -> _Factory:
        tracker_registry.add(name, TrackerSpec(factory, requirement))
        return factory

    return decorator


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))  # --tracker given twice means once


def require_trackers(
    names: Iterable[str], registry: Registry[TrackerSpec] = tracker_registry
) -> None:
    """Raise a one-line VaelabError for an unknown tracker name or a library not installed."""
    for name in _unique(names):
        if name not in registry:
            known = ", ".join(registry.names())
            raise VaelabError(f"unknown tracker {name!r} for --tracker; choose from: {known}")
        need = registry.get(name).requirement
        if importlib.util.find_spec(need.module) is None:
            raise VaelabError(
                f"--tracker {name} needs {need.library}; "
                f'install it with: pip install "vaelab[{need.extra}]"'
            )


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """A config as flat key -> scalar pairs: nested mappings joined with ".", others as JSON."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_params(value, prefix=f"{name}."))
        elif isinstance(value, str | int | float | bool):
            flat[name] = value
        else:  # None, lists, tuples: their JSON text, as config.json spells them
            flat[name] = json.dumps(value, default=str)
    return flat


@dataclass
class TrackerSet:
    """Several trackers behind one guard: a tracker call that raises is logged once and that
    tracker is switched off for good; the others, and training, carry on.

    Exceptions are caught per call and never reach the caller (``KeyboardInterrupt`` does), so
    the training loop needs no error handling around it. Nothing here touches the run directory.
    """

    trackers: dict[str, Tracker]
    failed: dict[str, str] = field(default_factory=dict)  # name -> the error that switched it off

    @classmethod
    def create(
        cls,
        names: Iterable[str],
        options: TrackerOptions | None = None,
        registry: Registry[TrackerSpec] = tracker_registry,
    ) -> TrackerSet:
        """Build the named trackers; raises VaelabError (one line) when one cannot be used."""
        wanted = _unique(names)
        require_trackers(wanted, registry)
        options = options or TrackerOptions()
        return cls({name: registry.get(name).factory(options) for name in wanted})

    def __bool__(self) -> bool:
        return bool(self.active())

    def active(self) -> list[str]:
        return [name for name in self.trackers if name not in self.failed]

    def _call(self, method: str, call: Callable[[str, Tracker], Any]) -> dict[str, Any]:
        """``call(name, tracker)`` for each active tracker; returns name -> result."""
        results = {}
        for name in self.active():
            try:
                results[name] = call(name, self.trackers[name])
            except Exception as exc:  # any failure of an outside tool must not stop training
                # One line, whatever the library put in its message.
                self.failed[name] = " ".join(f"{type(exc).__name__}: {exc}".split())
                log.warning(
                    "tracker %s failed in %s and is switched off for this run (the run "
                    "directory is unaffected): %s",
                    name,
                    method,
                    self.failed[name],
                )
        return results

    def start(self, run: TrackedRun, study: Mapping[str, str] | None = None) -> None:
        """Start every tracker; ``study`` is what ``start_study`` returned, for a member run."""

        def start(name: str, tracker: Tracker) -> None:
            tracker.start(run if study is None else replace(run, parent=study.get(name)))

        self._call("start", start)

    def log_epoch(
        self,
        epoch: int,
        record: Mapping[str, float],
        images: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self._call("log_epoch", lambda _, t: t.log_epoch(epoch, record, images))

    def finish(self, summary: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:
        self._call("finish", lambda _, t: t.finish(summary, artifacts))

    def close(self) -> None:
        self._call("close", lambda _, t: t.close())

    def start_study(self, study_dir: Path, config: dict[str, Any]) -> dict[str, str]:
        """Open each tracker's study parent; returns tracker name -> handle (only real ones)."""
        handles = self._call("start_study", lambda _, t: t.start_study(study_dir, config))
        return {name: handle for name, handle in handles.items() if handle is not None}

    def finish_study(self, study: Mapping[str, str], completed: bool = True) -> None:
        """Close the parents ``start_study`` opened (``completed`` as in ``Tracker``)."""
        self._call(
            "finish_study",
            lambda name, t: t.finish_study(study[name], completed) if name in study else None,
        )

    def log_evaluation(self, run_dir: Path, metrics: Mapping[str, float]) -> None:
        self._call("log_evaluation", lambda _, t: t.log_evaluation(run_dir, metrics))
