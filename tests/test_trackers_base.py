"""The tracker contract: registry, library checks, and the guard that keeps training going."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaelab.errors import VaelabError
from vaelab.registry import Registry
from vaelab.trackers import (
    Requirement,
    TrackedRun,
    TrackerOptions,
    TrackerSet,
    TrackerSpec,
    flat_params,
    require_trackers,
    tracker_registry,
)
from vaelab.trackers.mlflow import MlflowTracker
from vaelab.trackers.tensorboard import TensorBoardTracker

REPO = Path(__file__).resolve().parents[1]
GUARD_LOGGER = "vaelab.trackers.base"
# Tests that build the real trackers need their libraries (the [tensorboard] and [mlflow] extras).
WITH_LIBRARIES = pytest.mark.skipif(
    any(importlib.util.find_spec(tracker_registry.get(name).requirement.module) is None
        for name in tracker_registry),
    reason="needs the tracker libraries: pip install \"vaelab[tensorboard,mlflow]\"")


class Recorder:
    """A tracker that keeps every call, and raises from the methods named in ``fail``."""

    def __init__(self, options: TrackerOptions | None = None, fail: Sequence[str] = ()) -> None:
        self.fail = set(fail)
        self.calls: list[tuple[str, Any]] = []

    def _record(self, method: str, payload: Any = None) -> None:
        self.calls.append((method, payload))
        if method in self.fail:
            raise OSError(28, "No space left on device")

    def start(self, run: TrackedRun) -> None:
        self._record("start", run)

    def log_epoch(
        self, epoch: int, record: Mapping[str, float], images: Mapping[str, np.ndarray] | None
    ) -> None:
        self._record("log_epoch", epoch)

    def finish(self, summary: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        self._record("finish", dict(summary))

    def close(self) -> None:
        self._record("close")

    def start_study(self, study_dir: Path, config: dict[str, Any]) -> str | None:
        self._record("start_study", study_dir)
        return f"parent-of-{study_dir.name}"

    def finish_study(self, handle: str, completed: bool = True) -> None:
        self._record("finish_study", (handle, completed))

    def log_evaluation(self, run_dir: Path, metrics: Mapping[str, float]) -> None:
        self._record("log_evaluation", dict(metrics))


def _run(tmp_path: Path) -> TrackedRun:
    return TrackedRun(run_dir=tmp_path / "z20", name="z20", config={"z_dim": 20})


def _guard_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == GUARD_LOGGER and r.levelno == logging.WARNING]


def test_registry_holds_both_trackers_with_their_extras() -> None:
    assert tracker_registry.names() == ["mlflow", "tensorboard"]
    assert tracker_registry.get("tensorboard").factory is TensorBoardTracker
    assert tracker_registry.get("mlflow").factory is MlflowTracker
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name in tracker_registry:
        requirement = tracker_registry.get(name).requirement
        assert requirement.extra in extras, f"pyproject.toml has no [{requirement.extra}] extra"
        assert any(dep.startswith(requirement.module) for dep in extras[requirement.extra])


@WITH_LIBRARIES
def test_create_builds_each_named_tracker_once_with_the_options() -> None:
    trackers = TrackerSet.create(
        ["mlflow", "tensorboard", "mlflow"], TrackerOptions(experiment="myexp")
    )
    assert list(trackers.trackers) == ["mlflow", "tensorboard"]
    mlflow_tracker = trackers.trackers["mlflow"]
    assert isinstance(mlflow_tracker, MlflowTracker)
    assert mlflow_tracker.experiment == "myexp"
    assert trackers.active() == ["mlflow", "tensorboard"]


@WITH_LIBRARIES
def test_unknown_tracker_names_the_known_ones() -> None:
    with pytest.raises(VaelabError) as info:
        require_trackers(["tensorboard", "wandb"])
    message = str(info.value)
    assert "\n" not in message
    assert "'wandb'" in message
    assert "mlflow, tensorboard" in message
    with pytest.raises(VaelabError, match="'wandb'"):
        TrackerSet.create(["wandb"])


@pytest.mark.parametrize("name", ["mlflow", "tensorboard"])
def test_missing_library_names_the_extra_to_install(name: str) -> None:
    # The same spec, pointed at a module that no environment has.
    spec = tracker_registry.get(name)
    missing = replace(spec.requirement, module="vaelab_tests_no_such_module")
    registry: Registry[TrackerSpec] = Registry("tracker")
    registry.add(name, replace(spec, requirement=missing))
    with pytest.raises(VaelabError) as info:
        require_trackers([name], registry)
    library = spec.requirement.library
    assert str(info.value) == (
        f'--tracker {name} needs {library}; install it with: pip install "vaelab[{name}]"'
    )
    with pytest.raises(VaelabError, match="needs"):
        TrackerSet.create([name], registry=registry)


def test_a_registered_requirement_is_what_the_check_reads() -> None:
    registry: Registry[TrackerSpec] = Registry("tracker")
    registry.add("present", TrackerSpec(Recorder, Requirement("json", "JSON", "json")))
    registry.add("absent", TrackerSpec(Recorder, Requirement("vaelab_no_lib", "NoLib", "nolib")))
    require_trackers(["present"], registry)
    with pytest.raises(VaelabError, match=r'needs NoLib; install it with: pip install "vaelab\['):
        require_trackers(["present", "absent"], registry)


def test_importing_the_package_loads_no_tracking_library() -> None:
    code = (
        "import sys, vaelab.trackers\n"
        "heavy = [m for m in ('torch', 'tensorboard', 'mlflow', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_flat_params_keeps_scalars_and_spells_the_rest_as_json() -> None:
    config = {
        "z_dim": 20,
        "lr": 1e-3,
        "compile": False,
        "model": "mlp",
        "grad_clip": None,
        "trackers": ("tensorboard", "mlflow"),
        "extra": {"depth": 2},
    }
    assert flat_params(config) == {
        "z_dim": 20,
        "lr": 1e-3,
        "compile": False,
        "model": "mlp",
        "grad_clip": "null",
        "trackers": '["tensorboard", "mlflow"]',
        "extra.depth": 2,
    }
    assert json.loads(str(flat_params(config)["trackers"])) == ["tensorboard", "mlflow"]


def test_the_guard_calls_every_tracker_in_order(tmp_path: Path) -> None:
    recorder = Recorder()
    trackers = TrackerSet({"rec": recorder})
    run = _run(tmp_path)
    trackers.start(run)
    trackers.log_epoch(1, {"epoch": 1, "train_loss": 2.0}, None)
    trackers.finish({"best_val_loss": 1.0}, [])
    trackers.log_evaluation(run.run_dir, {"test_loss": 1.5})
    assert [call for call, _ in recorder.calls] == [
        "start",
        "log_epoch",
        "finish",
        "log_evaluation",
    ]
    assert recorder.calls[0][1] == run  # without a study, the run is passed as it is


def test_a_raising_tracker_warns_once_and_is_switched_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken, healthy = Recorder(fail=["log_epoch"]), Recorder()
    trackers = TrackerSet({"broken": broken, "healthy": healthy})
    caplog.set_level(logging.WARNING)
    run = _run(tmp_path)
    run.run_dir.mkdir()
    (run.run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n')
    trackers.start(run)
    for epoch in (1, 2, 3):
        trackers.log_epoch(epoch, {"epoch": epoch, "train_loss": 1.0 / epoch}, None)
    trackers.finish({"best_val_loss": 0.5}, [run.run_dir / "metrics.jsonl"])
    trackers.close()

    warnings = _guard_warnings(caplog)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "broken" in message and "log_epoch" in message
    assert "No space left on device" in message and "\n" not in message
    # After the failure the broken tracker gets no further call; the healthy one gets all.
    assert [call for call, _ in broken.calls] == ["start", "log_epoch"]
    assert [call for call, _ in healthy.calls] == [
        "start",
        "log_epoch",
        "log_epoch",
        "log_epoch",
        "finish",
        "close",
    ]
    assert trackers.active() == ["healthy"]
    assert "broken" in trackers.failed
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["metrics.jsonl"]
    assert (run.run_dir / "metrics.jsonl").read_text() == '{"epoch": 1}\n'


def test_a_tracker_failing_at_start_is_never_called_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Recorder(fail=["start"])
    trackers = TrackerSet({"broken": broken})
    caplog.set_level(logging.WARNING)
    trackers.start(_run(tmp_path))
    trackers.log_epoch(1, {"epoch": 1}, None)
    trackers.close()
    assert len(_guard_warnings(caplog)) == 1
    assert [call for call, _ in broken.calls] == ["start"]
    assert not trackers


def test_keyboard_interrupt_is_not_swallowed(tmp_path: Path) -> None:
    class Interrupted(Recorder):
        def log_epoch(self, *args: Any) -> None:
            raise KeyboardInterrupt

    trackers = TrackerSet({"rec": Interrupted()})
    trackers.start(_run(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        trackers.log_epoch(1, {"epoch": 1}, None)


def test_study_handles_go_to_their_own_tracker(tmp_path: Path) -> None:
    with_parent = Recorder()

    class NoParent(Recorder):
        def start_study(self, study_dir: Path, config: dict[str, Any]) -> str | None:
            self._record("start_study", study_dir)
            return None

    without_parent = NoParent()
    study = TrackerSet({"a": with_parent, "b": without_parent})
    handles = study.start_study(tmp_path / "study", {"z_dims": [2, 20]})
    assert handles == {"a": "parent-of-study"}

    member_a, member_b = Recorder(), NoParent()
    TrackerSet({"a": member_a, "b": member_b}).start(_run(tmp_path), study=handles)
    assert member_a.calls[0][1].parent == "parent-of-study"
    assert member_b.calls[0][1].parent is None

    study.finish_study(handles)
    assert with_parent.calls[-1] == ("finish_study", ("parent-of-study", True))
    assert [call for call, _ in without_parent.calls] == ["start_study"]
