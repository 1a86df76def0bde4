"""The trackers through the training: `vaelab train/study/evaluate --tracker ...` end to end.

TensorBoard's event files are read back with TensorBoard's own EventAccumulator and MLflow's
runs from a real SQLite store; every number is compared with the run directory's
metrics.jsonl, the record both trackers are sent.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    TENSORS,
    EventAccumulator,
)
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from conftest import EPOCH_RECORD_KEYS, stop_after
from vaelab.cli.main import main
from vaelab.config import TrainConfig
from vaelab.trackers import flat_params, tracker_registry
from vaelab.trackers.mlflow import RUN_DIR_TAG, STUDY_DIR_TAG
from vaelab.trackers.tensorboard import SUMMARY_PREFIX, image_tag, scalar_tag
from vaelab.training import RunOptions, TrainingInterrupted, fit, fit_many
from vaelab.training.tracking import grouped_runs

EXPERIMENT = "vaelab-tracking-tests"
STEPS_PER_EPOCH = 9  # the tiny dataset's 540 training images at batch 64
# What every epoch record holds besides "epoch", each sent to both trackers.
GUARD_LOGGER = "vaelab.trackers.base"
pytestmark = pytest.mark.usefixtures("one_thread")
PARENT_TAG = "mlflow.parentRunId"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


# -- helpers ---------------------------------------------------------------------------------
def _config(dataset: str, data_dir: Path, out: Path, **kw: Any) -> TrainConfig:
    return TrainConfig(**{"model": "mlp", "dataset": dataset, "data_dir": str(data_dir),
                          "z_dim": 4, "epochs": 2, "batch_size": 64, "device": "cpu",
                          "out": str(out), "experiment": EXPERIMENT, **kw})



def _history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / "tensorboard"),
                              size_guidance={SCALARS: 0, IMAGES: 0, TENSORS: 0})
    events.Reload()
    return events


def _scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in events.Scalars(tag)]


def _assert_mirrors(events: EventAccumulator, history: list[dict[str, Any]]) -> None:
    """Each metrics.jsonl value is the scalar at its epoch, and no step has two values."""
    assert set(history[0]) - {"epoch"} == set(EPOCH_RECORD_KEYS)
    for key in EPOCH_RECORD_KEYS:
        got = _scalars(events, scalar_tag(key))
        assert [step for step, _ in got] == [r["epoch"] for r in history], key
        # Event files store float32.
        assert [value for _, value in got] == pytest.approx([r[key] for r in history],
                                                            rel=1e-6), key
    for tag in events.Tags()["scalars"]:
        steps = [event.step for event in events.Scalars(tag)]
        assert len(steps) == len(set(steps)), f"{tag} has two values at one step: {steps}"


def _hparams(events: EventAccumulator) -> tuple[Any, Any]:
    """The hparams plugin's experiment (metric names) and session start (the config)."""
    content = events.PluginTagToContent("hparams")
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    return experiment, start.session_start_info.hparams


def _image_steps(events: EventAccumulator, name: str) -> list[int]:
    return [image.step for image in events.Images(image_tag(name))]


def _pixels(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("L"))


# -- MLflow store ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def migrated_store(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema, kept in pytest's cache per MLflow version
    (creating the schema runs MLflow's migrations, which take seconds)."""
    import mlflow

    kept = request.config.cache.mkdir(f"mlflow-schema-{mlflow.__version__}") / "mlflow.db"
    if not kept.is_file():
        fresh = tmp_path_factory.mktemp("mlflow-schema") / "mlflow.db"
        MlflowClient(f"sqlite:///{fresh}").search_experiments()
        shutil.copyfile(fresh, kept.with_suffix(".partial"))
        kept.with_suffix(".partial").replace(kept)
    return kept


@pytest.fixture
def mlflow_client(migrated_store: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """A fresh store named by MLFLOW_TRACKING_URI, as a user sets it; artifacts in tmp_path."""
    store = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps its artifacts in ./mlruns
    return MlflowClient(f"sqlite:///{store}")


def _runs(client: MlflowClient) -> list[Run]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def _metric(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return [(m.step, m.value) for m in points]


def _status(status: int) -> str:
    return str(RunStatus.to_string(status))


# -- TensorBoard -----------------------------------------------------------------------------
def test_tensorboard_holds_every_epoch_the_pictures_and_the_hparams(
        train_args: list[str], tmp_path: Path) -> None:
    assert main(["train", *train_args, "--epochs", "3", "--image-every", "2",
                 "--tracker", "tensorboard"]) == 0
    run = tmp_path / "run"
    history = _history(run)
    events = _events(run)
    _assert_mirrors(events, history)

    best = min(history, key=lambda r: r["val_loss"])
    summary = {"best_val_loss": best["val_loss"], "best_epoch": best["epoch"],
               **{f"final_{k}": history[-1][k]
                  for k in ("train_loss", "val_loss", "val_recon", "val_kl")}}
    for key, value in summary.items():
        assert _scalars(events, SUMMARY_PREFIX + key) == [(3, pytest.approx(value, rel=1e-6))]
    assert set(events.Tags()["scalars"]) == ({scalar_tag(k) for k in EPOCH_RECORD_KEYS}
                                             | {SUMMARY_PREFIX + k for k in summary})

    # --image-every 2 over 3 epochs: epoch 2, and the last epoch always.
    for name in ("reconstructions", "samples"):
        assert _image_steps(events, name) == [2, 3]
    shown = {name: [_pixels(i.encoded_image_string) for i in events.Images(image_tag(name))]
             for name in ("reconstructions", "samples")}
    for pictures in shown.values():
        assert pictures[0].shape == pictures[1].shape and pictures[1].std() > 10
        assert not np.array_equal(pictures[0], pictures[1])  # the model changed in between
    assert shown["reconstructions"][0].shape != shown["samples"][0].shape

    experiment, hparams = _hparams(events)
    assert {info.name.tag for info in experiment.metric_infos} == {
        SUMMARY_PREFIX + k for k in summary}
    config = json.loads((run / "config.json").read_text())
    assert set(hparams) == set(flat_params(config))
    assert hparams["z_dim"].number_value == 4 and hparams["epochs"].number_value == 3
    assert hparams["dataset"].string_value == config["dataset"]
    assert hparams["trackers"].string_value == '["tensorboard"]'


def test_a_stopped_resumed_and_extended_run_keeps_one_value_per_step(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = _config(tiny_dataset, tiny_dataset_dir, run, epochs=3, trackers=("tensorboard",))
    with pytest.raises(TrainingInterrupted):  # Ctrl-C in the middle of epoch 2
        fit(config, RunOptions(stop_requested=stop_after(STEPS_PER_EPOCH + 4), pictures=False))
    events = _events(run)
    assert _scalars(events, "loss/val") == [(1, pytest.approx(_history(run)[0]["val_loss"]))]
    with pytest.raises(KeyError):  # an interrupted run has no results, so no HParams entry
        events.PluginTagToContent("hparams")
    assert not any(tag.startswith(SUMMARY_PREFIX) for tag in events.Tags()["scalars"])

    assert main(["train", "--resume", str(run)]) == 0  # epochs 2 and 3
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 0  # one more
    history = _history(run)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    events = _events(run)
    _assert_mirrors(events, history)
    for name in ("reconstructions", "samples"):
        assert _image_steps(events, name) == [1, 2, 3, 4]
    # Each finish adds its results at its last epoch; the latest is the whole run's.
    best = min(r["val_loss"] for r in history)
    assert [step for step, _ in _scalars(events, SUMMARY_PREFIX + "best_val_loss")] == [3, 4]
    assert _scalars(events, SUMMARY_PREFIX + "best_val_loss")[-1][1] == pytest.approx(best)
    # TensorBoard keeps the first hyperparameter record a run wrote (it reads only the first
    # metadata of a tag), so the HParams tab shows the config of the first finish.
    assert _hparams(events)[1]["epochs"].number_value == 3
    assert len(list((run / "tensorboard").iterdir())) == 3  # one event file per start


def test_a_study_is_one_tensorboard_run_and_one_mlflow_child_per_z_dim(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        mlflow_client: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from vaelab.study import run as study_run

    # The trackers are done once the sweep is trained; the report after it (measurements,
    # figures, the digit classifier; test_study.py checks them) is left out to save time.
    def no_report(study_dir: str | Path, **_: Any) -> study_run.ReportPaths:
        return study_run.ReportPaths(Path(study_dir) / "report.html",
                                     Path(study_dir) / "report.md", Path(study_dir), [])

    monkeypatch.setattr(study_run, "prepare_classifier", lambda *_, **__: None)
    monkeypatch.setattr(study_run, "build_report", no_report)
    study = tmp_path / "study"
    assert main(["study", "--z-dims", "1,2", "--epochs", "1", "--model", "mlp",
                 "--dataset", tiny_dataset, "--data-dir", str(tiny_dataset_dir),
                 "--batch-size", "100", "--device", "cpu", "--out", str(study),
                 "--tracker", "tensorboard", "--tracker", "mlflow",
                 "--experiment", EXPERIMENT]) == 0

    # `tensorboard --logdir STUDY_DIR` finds one run per z_dim and overlays them.
    multiplexer = EventMultiplexer(size_guidance={SCALARS: 0})
    multiplexer.AddRunsFromDirectory(str(study))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == ["z1/tensorboard", "z2/tensorboard"]
    for z_dim in (1, 2):
        run = study / f"z{z_dim}"
        events = _events(run)
        _assert_mirrors(events, _history(run))
        assert _hparams(events)[1]["z_dim"].number_value == z_dim
        assert multiplexer.Scalars(f"z{z_dim}/tensorboard", "loss/val")[0].value == \
            pytest.approx(_history(run)[0]["val_loss"])

    runs = _runs(mlflow_client)
    [parent] = [r for r in runs if STUDY_DIR_TAG in r.data.tags]
    assert parent.data.tags[STUDY_DIR_TAG] == str(study.resolve())
    assert parent.info.run_name == "study"
    assert parent.info.status == _status(RunStatus.FINISHED)
    assert parent.data.params["z_dims"] == "[1, 2]"
    children = sorted((r for r in runs if r is not parent), key=lambda r: r.info.run_name)
    assert [c.info.run_name for c in children] == ["z1", "z2"]
    for z_dim, child in zip((1, 2), children, strict=True):
        run = study / f"z{z_dim}"
        assert child.data.tags[PARENT_TAG] == parent.info.run_id
        assert child.data.tags[RUN_DIR_TAG] == str(run.resolve())
        assert child.data.params["z_dim"] == str(z_dim)
        assert child.info.status == _status(RunStatus.FINISHED)
        assert _metric(mlflow_client, child.info.run_id, "val_loss") == [
            (1, pytest.approx(_history(run)[0]["val_loss"]))]


# -- MLflow ----------------------------------------------------------------------------------
def test_mlflow_follows_a_run_through_stop_resume_evaluate_and_extension(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        mlflow_client: MlflowClient, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "z4"
    config = _config(tiny_dataset, tiny_dataset_dir, run, trackers=("mlflow",))
    with pytest.raises(TrainingInterrupted):  # stopped in epoch 2 of 2
        fit(config, RunOptions(stop_requested=stop_after(STEPS_PER_EPOCH + 4)))
    [stopped] = _runs(mlflow_client)
    run_id = stopped.info.run_id
    assert stopped.info.status == _status(RunStatus.KILLED)
    assert stopped.info.run_name == "z4"
    assert stopped.data.tags[RUN_DIR_TAG] == str(run.resolve())
    assert _metric(mlflow_client, run_id, "val_loss") == [
        (1, pytest.approx(_history(run)[0]["val_loss"]))]

    assert main(["train", "--resume", str(run)]) == 0  # its config keeps --tracker mlflow
    [resumed] = _runs(mlflow_client)
    assert resumed.info.run_id == run_id and resumed.info.status == _status(RunStatus.FINISHED)
    history = _history(run)
    for key in EPOCH_RECORD_KEYS:
        assert _metric(mlflow_client, run_id, key) == [
            (r["epoch"], pytest.approx(r[key])) for r in history], key
    assert "epoch" not in resumed.data.metrics
    assert resumed.data.metrics["best_val_loss"] == pytest.approx(
        min(r["val_loss"] for r in history))
    saved = json.loads((run / "config.json").read_text())
    assert resumed.data.params == {k: str(v) for k, v in flat_params(saved).items()}

    names = {a.path for a in mlflow_client.list_artifacts(run_id)}
    assert {"config.json", "metrics.jsonl", "reconstructions.png", "samples.png",
            "loss_curves.png", "images"} <= names
    for name in ("metrics.jsonl", "samples.png"):
        copy = mlflow_client.download_artifacts(run_id, name, str(tmp_path / "download"))
        assert Path(copy).read_bytes() == (run / name).read_bytes()
    pictures = [a.path for a in mlflow_client.list_artifacts(run_id, "images")]
    for name in ("reconstructions", "samples"):
        steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in pictures
                       if Path(p).name.startswith(f"{name}+") and p.endswith(".png"))
        assert steps == [1, 2], (name, pictures)

    capsys.readouterr()
    assert main(["evaluate", str(run), "--tracker", "mlflow", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kept = json.loads((run / "evaluation.json").read_text())["test/best"]
    assert kept == report
    [evaluated] = _runs(mlflow_client)
    assert evaluated.info.run_id == run_id
    for key in ("neg_elbo", "recon_bce", "kl", "mse"):
        assert evaluated.data.metrics[f"test_{key}"] == pytest.approx(report[key])

    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    [extended] = _runs(mlflow_client)
    assert extended.info.run_id == run_id and extended.info.status == _status(RunStatus.FINISHED)
    assert [step for step, _ in _metric(mlflow_client, run_id, "val_loss")] == [1, 2, 3]
    assert extended.data.params["epochs"] == "2"  # MLflow keeps a parameter's first value
    copy = mlflow_client.download_artifacts(run_id, "config.json", str(tmp_path / "again"))
    assert json.loads(Path(copy).read_text())["epochs"] == 3  # the latest start's config
    assert extended.data.metrics["test_neg_elbo"] == pytest.approx(report["neg_elbo"])


def _guard_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == GUARD_LOGGER and r.levelno == logging.WARNING]


def test_an_unreachable_mlflow_server_warns_once_and_the_run_is_complete(
        train_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    # No retries: test_trackers_mlflow.py times the default ones; this is about the run.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING)
    assert main(["train", *train_args, "--tracker", "mlflow", "--tracker", "tensorboard"]) == 0
    [warning] = _guard_warnings(caplog)
    assert warning.startswith("tracker mlflow failed in start") and "127.0.0.1:9" in warning
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {
        "config.json", "provenance.json", "metrics.jsonl", "last.safetensors",
        "best.safetensors", "reconstructions.png", "samples.png", "loss_curves.png",
        "tensorboard"}
    history = _history(run)
    assert [r["epoch"] for r in history] == [1, 2]
    _assert_mirrors(_events(run), history)  # the other tracker logged every epoch
    assert not (tmp_path / "mlruns").exists()


def test_a_study_that_loses_its_mlflow_server_warns_once_for_all_its_runs(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once: this is about count
    caplog.set_level(logging.WARNING)
    configs = [_config(tiny_dataset, tiny_dataset_dir, tmp_path / "study" / f"z{z}", z_dim=z,
                       epochs=1, trackers=("mlflow",)) for z in (1, 2)]
    with grouped_runs(configs[0], tmp_path / "study", {"z_dims": [1, 2]}) as handles:
        assert dict(handles) == {} and handles.lost == {"mlflow"}
        results = fit_many(configs, RunOptions(tracker_study=handles, pictures=False))
    assert [len(r.history) for r in results] == [1, 1]
    [warning] = _guard_warnings(caplog)
    assert warning.startswith("tracker mlflow failed in start_study")


def test_an_interrupted_study_parent_is_killed_and_finished_by_the_resume(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        mlflow_client: MlflowClient) -> None:
    configs = [_config(tiny_dataset, tiny_dataset_dir, tmp_path / "study" / f"z{z}", z_dim=z,
                       epochs=1, trackers=("mlflow",)) for z in (1, 2)]

    def study(options: RunOptions) -> None:
        with grouped_runs(configs[0], tmp_path / "study", {"z_dims": [1, 2]}) as handles:
            fit_many(configs, replace(options, tracker_study=handles, pictures=False))

    with pytest.raises(TrainingInterrupted):
        study(RunOptions(stop_requested=stop_after(4)))
    statuses = {r.data.tags.get(STUDY_DIR_TAG, r.info.run_name): r.info.status
                for r in _runs(mlflow_client)}
    parent = str((tmp_path / "study").resolve())
    assert statuses == {parent: _status(RunStatus.KILLED), "z1": _status(RunStatus.KILLED),
                        "z2": _status(RunStatus.KILLED)}
    study(RunOptions(resume=True))
    assert {r.info.status for r in _runs(mlflow_client)} == {_status(RunStatus.FINISHED)}
    assert len(_runs(mlflow_client)) == 3  # the same parent and children, reopened


# -- refusals --------------------------------------------------------------------------------
@pytest.fixture
def tensorboard_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorBoard's registry entry asks for a module that is not installed anywhere."""
    spec = tracker_registry.get("tensorboard")
    absent = replace(spec.requirement, module="vaelab_absent_tensorboard")
    monkeypatch.setitem(tracker_registry._entries, "tensorboard",
                        replace(spec, requirement=absent))


def _command(name: str, train_args: list[str], tmp_path: Path) -> list[str]:
    return {"train": ["train", *train_args],
            "study": ["study", "--quick", "--out", str(tmp_path / "study")],
            "evaluate": ["evaluate", str(tmp_path / "run")]}[name]


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


@pytest.mark.parametrize("command", ["train", "study", "evaluate"])
@pytest.mark.parametrize(("tracker", "words"), [
    ("tensorboard", ["--tracker tensorboard needs TensorBoard",
                     'pip install "vaelab[tensorboard]"']),
    ("wandb", ["unknown tracker 'wandb'", "mlflow, tensorboard"]),
])
def test_a_tracker_that_cannot_run_stops_the_command_before_it_writes(
        command: str, tracker: str, words: list[str], train_args: list[str], tmp_path: Path,
        tensorboard_missing: None, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(tmp_path)
    assert main([*_command(command, train_args, tmp_path), "--tracker", tracker]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert _files(tmp_path) == before


def test_the_python_api_refuses_a_missing_tracker_library_before_it_writes(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        tensorboard_missing: None) -> None:
    from vaelab.errors import VaelabError

    config = _config(tiny_dataset, tiny_dataset_dir, tmp_path / "run",
                     trackers=("tensorboard",))
    with pytest.raises(VaelabError, match=r'pip install "vaelab\[tensorboard\]"'):
        fit(config)
    assert not (tmp_path / "run").exists()


# -- torchrun ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _as_rank(rank: int, store: Path) -> Iterator[Any]:
    """A real one-process gloo group, in which this process plays ``rank`` of two."""
    import torch.distributed as dist

    from vaelab.training.sharded import Shard

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    try:
        yield Shard(rank, 2)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("rank", [0, 1])
def test_under_torchrun_only_rank_0_logs(rank: int, tiny_dataset: str, tiny_dataset_dir: Path,
                                         tmp_path: Path, mlflow_client: MlflowClient,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from vaelab.training import sharded

    monkeypatch.setattr(sharded, "process_group",
                        lambda config: _as_rank(rank, tmp_path / "gloo-store"))
    run = tmp_path / "run"
    config = _config(tiny_dataset, tiny_dataset_dir, run, epochs=1,
                     trackers=("mlflow", "tensorboard"))
    result = sharded.fit_sharded(config, RunOptions(pictures=False))
    assert result.run_dir == run and len(result.history) == 1
    runs = _runs(mlflow_client)
    if rank == 0:
        [logged] = runs
        assert logged.data.tags[RUN_DIR_TAG] == str(run.resolve())
        _assert_mirrors(_events(run), _history(run))
    else:  # the other ranks train in a scratch folder, with no tracker at all
        assert runs == [] and not run.exists()
