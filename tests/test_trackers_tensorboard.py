"""The TensorBoard tracker, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    TENSORS,
    EventAccumulator,
)
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from conftest import EPOCH_RECORD_KEYS
from vaelab.runs.layout import RunDir
from vaelab.trackers import TrackedRun, TrackerSet
from vaelab.trackers.tensorboard import (
    SUMMARY_PREFIX,
    TensorBoardTracker,
    image_tag,
    scalar_tag,
)

CONFIG: dict[str, Any] = {
    "z_dim": 20,
    "model": "mlp",
    "lr": 0.001,
    "epochs": 4,
    "compile": False,
    "grad_clip": None,
    "trackers": ["tensorboard"],
}


def record(epoch: int, offset: float = 0.0) -> dict[str, float]:
    """A metrics.jsonl record whose every value is distinct and depends on ``offset``."""
    values = {key: 100.0 / epoch + i + offset for i, key in enumerate(EPOCH_RECORD_KEYS)}
    return {"epoch": epoch, **values}


def grid(epoch: int) -> np.ndarray:
    rng = np.random.default_rng(epoch)
    return rng.integers(0, 256, size=(28 * 2, 28 * 3), dtype=np.uint8)


def accumulator(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(
        str(RunDir(run_dir).tensorboard), size_guidance={SCALARS: 0, IMAGES: 0, TENSORS: 0}
    )
    events.Reload()
    return events


def scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in events.Scalars(tag)]


def assert_scalars(events: EventAccumulator, tag: str, expected: list[tuple[int, float]]) -> None:
    got = scalars(events, tag)
    assert [step for step, _ in got] == [step for step, _ in expected], tag
    assert [value for _, value in got] == pytest.approx([v for _, v in expected], rel=1e-6), tag


def run_in(run_dir: Path, resumed: bool = False, start_epoch: int = 0) -> TrackedRun:
    return TrackedRun(run_dir, run_dir.name, CONFIG, resumed=resumed, start_epoch=start_epoch)


def test_scalar_tags_put_train_and_validation_side_by_side() -> None:
    assert scalar_tag("train_loss") == "loss/train"
    assert scalar_tag("val_mse") == "mse/val"
    assert scalar_tag("test_kl") == "kl/test"
    assert scalar_tag("seconds") == "seconds"
    assert scalar_tag("lr") == "lr"


def test_epochs_images_and_hparams_read_back(tmp_path: Path) -> None:
    run_dir = tmp_path / "z20"
    tracker = TensorBoardTracker()
    tracker.start(run_in(run_dir))
    logged = [record(epoch) for epoch in (1, 2, 3)]
    pictures = {1: grid(1), 3: grid(3)}  # --image-every 2
    for rec in logged:
        epoch = int(rec["epoch"])
        images = {"reconstructions": pictures[epoch]} if epoch in pictures else None
        tracker.log_epoch(epoch, rec, images)
    summary = {"best_val_loss": 12.5, "best_epoch": 3.0, "final_val_loss": 12.5}
    tracker.finish(summary, [run_dir / "config.json"])
    tracker.close()  # the loop's `finally:` after a finish changes nothing

    # One run: everything in tensorboard/ itself, no timestamped hparams sub-run.
    assert all(path.is_file() for path in RunDir(run_dir).tensorboard.iterdir())
    events = accumulator(run_dir)
    for key in EPOCH_RECORD_KEYS:
        assert_scalars(events, scalar_tag(key), [(int(r["epoch"]), r[key]) for r in logged])
    assert "epoch" not in events.Tags()["scalars"]

    shown = events.Images(image_tag("reconstructions"))
    assert [image.step for image in shown] == [1, 3]
    for image in shown:
        pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("L"))
        np.testing.assert_array_equal(pixels, pictures[image.step])

    for key, value in summary.items():
        assert_scalars(events, SUMMARY_PREFIX + key, [(3, value)])
    content = events.PluginTagToContent("hparams")
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {info.name.tag for info in experiment.metric_infos} == {
        SUMMARY_PREFIX + key for key in summary
    }
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["z_dim"].number_value == 20
    assert hparams["lr"].number_value == pytest.approx(0.001)
    assert hparams["model"].string_value == "mlp"
    assert hparams["grad_clip"].string_value == "null"
    assert hparams["trackers"].string_value == '["tensorboard"]'


def _steps_per_tag(events: EventAccumulator) -> dict[str, list[int]]:
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_resumed_run_has_one_value_per_step(tmp_path: Path) -> None:
    run_dir = tmp_path / "z20"
    crashed = TensorBoardTracker()
    crashed.start(run_in(run_dir))
    for epoch in (1, 2, 3):
        # Epoch 3's events reach the disk, then the process dies before its checkpoint.
        crashed.log_epoch(epoch, record(epoch), {"samples": grid(epoch)})
    crashed.close()

    resumed = TensorBoardTracker()
    resumed.start(run_in(run_dir, resumed=True, start_epoch=2))
    for epoch in (3, 4):
        resumed.log_epoch(epoch, record(epoch, offset=0.5), {"samples": grid(10 + epoch)})
    resumed.finish({"best_val_loss": 1.0}, [])

    events = accumulator(run_dir)
    steps = _steps_per_tag(events)
    for key in EPOCH_RECORD_KEYS:
        assert steps[scalar_tag(key)] == [1, 2, 3, 4], key
        values = [value for _, value in scalars(events, scalar_tag(key))]
        expected = [record(1)[key], record(2)[key], record(3, 0.5)[key], record(4, 0.5)[key]]
        assert values == pytest.approx(expected, rel=1e-6)
    assert [image.step for image in events.Images(image_tag("samples"))] == [1, 2, 3, 4]


def test_a_new_run_in_a_used_folder_drops_the_earlier_attempt(tmp_path: Path) -> None:
    # A run that crashed before its first checkpoint restarts from epoch 0 in the same folder.
    run_dir = tmp_path / "z20"
    first = TensorBoardTracker()
    first.start(run_in(run_dir))
    first.log_epoch(1, record(1), None)
    first.close()

    again = TensorBoardTracker()
    again.start(run_in(run_dir))
    again.log_epoch(1, record(1, offset=7.0), None)
    again.close()

    events = accumulator(run_dir)
    assert_scalars(events, "loss/train", [(1, record(1, 7.0)["train_loss"])])


def test_through_the_guard_a_closed_run_is_not_finished(tmp_path: Path) -> None:
    run_dir = tmp_path / "z2"
    trackers = TrackerSet.create(["tensorboard"])
    trackers.start(run_in(run_dir))
    trackers.log_epoch(1, record(1), None)
    trackers.close()  # interrupted: curves kept, no results
    events = accumulator(run_dir)
    assert_scalars(events, "loss/val", [(1, record(1)["val_loss"])])
    assert not any(tag.startswith(SUMMARY_PREFIX) for tag in events.Tags()["scalars"])
    with pytest.raises(KeyError, match="hparams"):
        events.PluginTagToContent("hparams")
    assert trackers.active() == ["tensorboard"]
