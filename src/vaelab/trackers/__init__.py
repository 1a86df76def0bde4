"""Experiment trackers (TensorBoard, MLflow) that mirror a run directory while it trains.

Importing this package fills ``tracker_registry`` without importing either library; each is
imported when its tracker starts. See docs/tracking.md for what each tracker writes.
"""

from __future__ import annotations

# The tracker modules register themselves; the libraries they wrap load when a tracker starts.
from vaelab.trackers import mlflow, tensorboard  # noqa: F401
from vaelab.trackers.base import (
    DEFAULT_EXPERIMENT,
    Requirement,
    TrackedRun,
    Tracker,
    TrackerOptions,
    TrackerSet,
    TrackerSpec,
    flat_params,
    register_tracker,
    require_trackers,
    tracker_registry,
)

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
