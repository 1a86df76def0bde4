"""The MLflow tracker against a real SQLite tracking store in tmp_path."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from conftest import EPOCH_RECORD_KEYS
from vaelab.runs.layout import RunDir
from vaelab.trackers import TrackedRun, TrackerOptions, TrackerSet, flat_params
from vaelab.trackers.mlflow import (
    HTTP_DEFAULTS,
    RUN_DIR_TAG,
    STUDY_DIR_TAG,
    MlflowTracker,
    _short_http,
)

EXPERIMENT = "vaelab-tests"
GUARD_LOGGER = "vaelab.trackers.base"


def config(z_dim: int = 20, epochs: int = 3) -> dict[str, Any]:
    return {
        "z_dim": z_dim,
        "model": "mlp",
        "lr": 0.001,
        "epochs": epochs,
        "grad_clip": None,
        "trackers": ["mlflow"],
        "experiment": EXPERIMENT,
    }


def record(epoch: int, offset: float = 0.0) -> dict[str, float]:
    values = {k: 100.0 / epoch + i + offset for i, k in enumerate(EPOCH_RECORD_KEYS)}
    return {"epoch": epoch, **values}


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema created once (migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def client(migrated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """A fresh store for this test, named by MLFLOW_TRACKING_URI as a user would."""
    store = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, store)
    uri = f"sqlite:///{store}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts under ./mlruns of a SQLite store
    return MlflowClient(uri)


def make_run_dir(root: Path, name: str = "z20") -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config()) + "\n")
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(record(e)) + "\n" for e in (1, 2)))
    (run_dir / "reconstructions.png").write_bytes(b"\x89PNG\r\n\x1a\n-not-decoded-")
    return run_dir


def tracked(run_dir: Path, resumed: bool = False, start_epoch: int = 0, **kw: Any) -> TrackedRun:
    cfg = kw.pop("cfg", config())
    return TrackedRun(run_dir, run_dir.name, cfg, resumed=resumed, start_epoch=start_epoch, **kw)


def only_run(client: MlflowClient, **where: str) -> Run:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id])
    runs = [r for r in found if all(r.data.tags.get(k) == v for k, v in where.items())]
    assert len(runs) == 1, runs
    return runs[0]


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return [(m.step, m.value) for m in points]


def test_a_run_logs_params_metrics_images_and_artifacts(
    client: MlflowClient, tmp_path: Path
) -> None:
    run_dir = make_run_dir(tmp_path / "runs")
    tracker = MlflowTracker(TrackerOptions(experiment=EXPERIMENT))
    tracker.start(tracked(run_dir))
    picture = np.arange(28 * 56, dtype=np.int64).reshape(28, 56).astype(np.uint8)
    for epoch in (1, 2, 3):
        images = {"samples": picture} if epoch != 2 else None
        tracker.log_epoch(epoch, record(epoch), images)
    artifacts = [
        run_dir / name
        for name in ("config.json", "metrics.jsonl", "reconstructions.png", "samples.png")
    ]
    tracker.finish({"best_val_loss": 50.5, "best_epoch": 3.0}, artifacts)
    tracker.close()  # the loop's `finally:` after a finish changes nothing

    run = only_run(client)
    assert run.info.run_name == "z20"
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert run.data.tags[RUN_DIR_TAG] == str(run_dir.resolve())
    assert run.data.params == {k: str(v) for k, v in flat_params(config()).items()}
    for key in EPOCH_RECORD_KEYS:
        assert history(client, run.info.run_id, key) == [(e, record(e)[key]) for e in (1, 2, 3)]
    assert "epoch" not in run.data.metrics
    assert run.data.metrics["best_val_loss"] == 50.5
    assert run.data.metrics["best_epoch"] == 3.0

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "metrics.jsonl", "reconstructions.png", "images"} <= names
    assert "samples.png" not in names  # not in the run directory, so not uploaded
    copy = Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path / "dl")))
    assert copy.read_bytes() == (run_dir / "config.json").read_bytes()
    stored = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in stored if p.endswith(".png"))
    assert steps == [1, 3]
    # Nothing landed outside tmp_path: the store and its artifacts are both here.
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path)


def test_evaluation_metrics_land_in_the_trained_run(client: MlflowClient, tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path / "runs")
    trained = TrackerSet.create(["mlflow"], TrackerOptions(experiment=EXPERIMENT))
    trained.start(tracked(run_dir))
    trained.log_epoch(1, record(1), None)
    trained.finish({"best_val_loss": 101.0}, [])

    # `vaelab evaluate RUN --tracker mlflow`: a new process, a new tracker.
    evaluation = TrackerSet.create(["mlflow"], TrackerOptions(experiment=EXPERIMENT))
    evaluation.log_evaluation(run_dir, {"test_loss": 99.5, "test_mse": 0.02})
    assert evaluation.active() == ["mlflow"]

    run = only_run(client)
    assert run.data.metrics["test_loss"] == 99.5
    assert run.data.metrics["test_mse"] == 0.02
    assert run.data.metrics["best_val_loss"] == 101.0


def test_evaluating_an_untracked_run_warns_and_logs_nothing(
    client: MlflowClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    evaluation = TrackerSet.create(["mlflow"], TrackerOptions(experiment=EXPERIMENT))
    evaluation.log_evaluation(make_run_dir(tmp_path / "runs"), {"test_loss": 99.5})
    warnings = [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER]
    assert len(warnings) == 1
    assert RUN_DIR_TAG in warnings[0] and "--tracker mlflow" in warnings[0]
    assert client.get_experiment_by_name(EXPERIMENT) is None  # nothing was created


def test_a_study_is_a_parent_run_with_nested_children(client: MlflowClient, tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    options = TrackerOptions(experiment=EXPERIMENT)
    study = TrackerSet.create(["mlflow", "tensorboard"], options)
    handles = study.start_study(study_dir, {"z_dims": [2, 20], "epochs": 3})
    assert set(handles) == {"mlflow"}  # TensorBoard needs no parent
    for z_dim in (2, 20):
        run_dir = make_run_dir(study_dir, f"z{z_dim}")
        member = TrackerSet.create(["mlflow", "tensorboard"], options)
        member.start(tracked(run_dir, cfg=config(z_dim)), study=handles)
        member.log_epoch(1, record(1), None)
        member.finish({"best_val_loss": 10.0 + z_dim}, RunDir(run_dir).artifacts())
        assert member.active() == ["mlflow", "tensorboard"]
    study.finish_study(handles)

    parent = only_run(client, **{STUDY_DIR_TAG: str(study_dir.resolve())})
    assert parent.info.run_id == handles["mlflow"]
    assert parent.info.run_name == "study"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["z_dims"] == "[2, 20]"
    for z_dim in (2, 20):
        child = only_run(client, **{RUN_DIR_TAG: str((study_dir / f"z{z_dim}").resolve())})
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params["z_dim"] == str(z_dim)
        assert child.info.status == "FINISHED"
        uploaded = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert uploaded == {"config.json", "metrics.jsonl", "reconstructions.png"}

    # Running the study again (to finish members) reopens the same parent.
    again = TrackerSet.create(["mlflow"], options).start_study(study_dir, {"z_dims": [2, 20]})
    assert again == handles


def test_a_resumed_run_continues_the_same_mlflow_run(client: MlflowClient, tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path / "runs")
    options = TrackerOptions(experiment=EXPERIMENT)
    crashed = MlflowTracker(options)
    crashed.start(tracked(run_dir))
    for epoch in (1, 2, 3):
        crashed.log_epoch(epoch, record(epoch), None)
    crashed.close()  # stopped before epoch 3's checkpoint
    first = only_run(client)
    assert first.info.status == "KILLED"

    resumed = MlflowTracker(options)
    # The resume asks for more epochs: a changed value keeps its first MLflow value.
    resumed.start(tracked(run_dir, resumed=True, start_epoch=2, cfg=config(epochs=6) | {"new": 1}))
    assert resumed.run_id == first.info.run_id
    assert only_run(client).info.status == "RUNNING"
    for epoch in (3, 4):
        resumed.log_epoch(epoch, record(epoch, offset=0.5), None)
    resumed.finish({"best_val_loss": 1.0}, [run_dir / "config.json"])

    run = only_run(client)
    assert run.info.run_id == first.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["new"] == "1"
    points = history(client, run.info.run_id, "val_loss")
    assert [step for step, _ in points] == [1, 2, 3, 3, 4]  # MLflow keeps each logged value
    assert points[-2:] == [(3, record(3, 0.5)["val_loss"]), (4, record(4, 0.5)["val_loss"])]
    assert run.data.metrics["val_loss"] == record(4, 0.5)["val_loss"]


def test_a_new_run_in_the_same_folder_is_a_new_mlflow_run(
    client: MlflowClient, tmp_path: Path
) -> None:
    run_dir = make_run_dir(tmp_path / "runs")
    ids = []
    for _ in range(2):
        tracker = MlflowTracker(TrackerOptions(experiment=EXPERIMENT))
        tracker.start(tracked(run_dir))
        tracker.close()
        ids.append(tracker_run_id(client, run_dir))
    assert ids[0] != ids[1]
    # The most recent one is the one a later resume or evaluation finds.
    evaluation = MlflowTracker(TrackerOptions(experiment=EXPERIMENT))
    evaluation.log_evaluation(run_dir, {"test_loss": 3.0})
    assert "test_loss" in client.get_run(ids[1]).data.metrics
    assert "test_loss" not in client.get_run(ids[0]).data.metrics


def tracker_run_id(client: MlflowClient, run_dir: Path) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return str(
        next(r for r in runs if r.data.tags[RUN_DIR_TAG] == str(run_dir.resolve())).info.run_id
    )


def test_run_directories_with_quotes_are_found(client: MlflowClient, tmp_path: Path) -> None:
    for name in ("it's", 'say "z"', "both ' and \""):
        run_dir = make_run_dir(tmp_path / "runs", name)
        trained = MlflowTracker(TrackerOptions(experiment=EXPERIMENT))
        trained.start(tracked(run_dir))
        trained.finish({}, [])
        MlflowTracker(TrackerOptions(experiment=EXPERIMENT)).log_evaluation(
            run_dir, {"test_loss": float(len(name))}
        )
        run = only_run(client, **{RUN_DIR_TAG: str(run_dir.resolve())})
        assert run.data.metrics["test_loss"] == float(len(name))


def test_an_unreachable_server_warns_once_and_returns_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Port 9 (discard) on the loopback: nothing listens, so every connection is refused.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.WARNING)
    run_dir = make_run_dir(tmp_path / "runs")
    started = time.monotonic()
    trackers = TrackerSet.create(["mlflow"], TrackerOptions(experiment=EXPERIMENT))
    trackers.start(tracked(run_dir))
    for epoch in (1, 2, 3):
        trackers.log_epoch(epoch, record(epoch), None)
    trackers.finish({"best_val_loss": 1.0}, [run_dir / "config.json"])
    trackers.close()
    elapsed = time.monotonic() - started

    assert elapsed < 20, f"an unreachable MLflow server held training for {elapsed:.1f} s"
    # One warning in all (urllib3's retry notices are held back), from the guard.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == [GUARD_LOGGER]
    message = warnings[0].getMessage()
    assert "tracker mlflow failed in start" in message and "127.0.0.1:9" in message
    assert trackers.active() == []
    assert not any(name in os.environ for name in HTTP_DEFAULTS)  # restored after each call
    assert not any(
        type(f).__name__ == "_DropRetryNotices"
        for f in logging.getLogger("urllib3.connectionpool").filters
    )


def test_a_server_that_never_answers_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A loopback socket that accepts connections into its backlog and never replies.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        port = silent.getsockname()[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # the user's own setting wins
        monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
        caplog.set_level(logging.WARNING)
        started = time.monotonic()
        trackers = TrackerSet.create(["mlflow"], TrackerOptions(experiment=EXPERIMENT))
        trackers.start(tracked(make_run_dir(tmp_path / "runs")))
        trackers.log_epoch(1, record(1), None)
        elapsed = time.monotonic() - started
    # 3 tries of 1 s and the backoff between them; MLflow alone would retry for minutes.
    assert elapsed < 15, f"a silent MLflow server held training for {elapsed:.1f} s"
    assert len([r for r in caplog.records if r.name == GUARD_LOGGER]) == 1
    assert trackers.active() == []


def test_short_http_settings_yield_to_the_users_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    with _short_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
        assert (
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
            == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        )
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
