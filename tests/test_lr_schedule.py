"""A run's learning-rate schedule: stepped by the lifecycle, kept in the checkpoint, resumed.

Every schedule is interrupted mid-epoch and at an epoch's last step, then resumed, on each
training path (a stack of one with the written-out gradient and vaelab's own Adam call; the
autograd ``TrainStep``; a stack of two models), and must end bit-identical to a run that was
never stopped. The kill -9 version of the same is in test_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from conftest import stop_after
from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.runs.checkpoint import read_checkpoint
from vaelab.training import RunOptions, TrainingInterrupted, fit, fit_many
from vaelab.training.lr_schedule import decode_state, encode_state

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 9  # 540 training images (60 held out) at batch 64
SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {},
    "burda": {"lr_schedule": "burda"},
    "cosine": {"lr_schedule": "cosine", "lr_warmup": 1, "lr_min": 1e-4},
    "step": {"lr_schedule": "step", "lr_step_every": 1, "lr_gamma": 0.5},
    # A rate too small to better the loss by the plateau's threshold (1e-4 relative), so it
    # cuts; the cut is still above ReduceLROnPlateau's eps (1e-8), below which it would not.
    "plateau": {"lr_schedule": "plateau", "lr_patience": 0, "lr_gamma": 0.5, "lr": 1e-7},
}
# The autograd step: a K-sample objective keeps a model off the written-out gradient.
TRAIN_STEP = {"model": "vae", "binarize": "dynamic", "iw_samples": 2}
PATHS: dict[str, dict[str, Any]] = {
    "stack_of_one": {},  # mlp, fp32 on the CPU: the written-out gradient, Adam called directly
    "stack_of_one_dynamic": {"model": "vae", "binarize": "dynamic"},  # its own binary batches
    "train_step": TRAIN_STEP,
}


def _config(dataset: str, data_dir: Path, out: Path, **kw: Any) -> TrainConfig:
    return TrainConfig(**{"dataset": dataset, "data_dir": str(data_dir), "epochs": 3,
                          "batch_size": 64, "z_dim": 3, "device": "cpu", "out": str(out), **kw})


def _records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def _interrupted(config: TrainConfig, stop_at: int) -> Any:
    with pytest.raises(TrainingInterrupted):
        fit(config, RunOptions(stop_requested=stop_after(stop_at), pictures=False))
    return fit(config, RunOptions(resume=True, pictures=False))


def _assert_same_run(a: Any, b: Any) -> None:
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert _records(a.history) == _records(b.history)


# The constant rate's resume is test_lifecycle.py's and test_faults.py's first kill test.
CASES = [(name, "stack_of_one") for name in SCHEDULES if name != "constant"] + [
    ("burda", "stack_of_one_dynamic"), ("burda", "train_step"), ("plateau", "train_step")]


@pytest.mark.parametrize(("name", "path"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_every_schedule_resumes_bit_identically(name: str, path: str, tiny_dataset: str,
                                                tiny_dataset_dir: Path, tmp_path: Path) -> None:
    settings = {**SCHEDULES[name], **PATHS[path]}
    full = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "full", **settings),
               RunOptions(pictures=False))
    # Mid-epoch (epoch 2, step 3), and after an epoch's last step but before its end was
    # recorded (where Burda's schedule cuts for this length: its milestones are 0, 0, 0, 0, 1,
    # 3 and 9 steps); the autograd path once.
    for stop_at in (STEPS + 3, STEPS) if path == "stack_of_one" else (STEPS + 3,):
        cut = _config(tiny_dataset, tiny_dataset_dir, tmp_path / f"cut{stop_at}", **settings)
        _assert_same_run(full, _interrupted(cut, stop_at))
    rates = [r["lr"] for r in full.history]
    assert len(set(rates)) > 1, rates  # the schedule did move the rate
    if name == "plateau":  # the first epoch improves on nothing; the second does not improve
        assert rates == pytest.approx([1e-7, 1e-7, 5e-8], rel=1e-12)


def test_the_epoch_records_the_rate_of_its_last_step(tiny_dataset: str, tiny_dataset_dir: Path,
                                                     tmp_path: Path) -> None:
    result = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "run", lr_schedule="burda"),
                 RunOptions(pictures=False))
    # 27 steps: Burda's cuts after steps 0, 0, 0, 0, 1, 3, 9; epoch 1 ends at step 8 (six cuts
    # done), epochs 2 and 3 after all seven.
    assert [r["lr"] for r in result.history] == pytest.approx(
        [1e-3 * 10 ** (-6 / 7), 1e-4, 1e-4], rel=1e-12)
    state = read_checkpoint(tmp_path / "run" / "last.safetensors").schedule_state
    assert state is not None and state["schedule"] == "burda"
    assert state["scheduler"]["last_epoch"] == 27


def test_a_constant_rate_keeps_no_schedule_state(tiny_dataset: str, tiny_dataset_dir: Path,
                                                 tmp_path: Path) -> None:
    result = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "run", epochs=2),
                 RunOptions(pictures=False))
    assert [r["lr"] for r in result.history] == [1e-3, 1e-3]
    assert read_checkpoint(tmp_path / "run" / "last.safetensors").schedule_state is None


def test_a_stack_shares_one_schedule_and_resumes(tiny_dataset: str, tiny_dataset_dir: Path,
                                                 tmp_path: Path) -> None:
    def configs(folder: str) -> list[TrainConfig]:
        return [_config(tiny_dataset, tiny_dataset_dir, tmp_path / folder / f"z{z}", z_dim=z,
                        lr_schedule="cosine") for z in (2, 4)]

    full = fit_many(configs("full"), RunOptions(pictures=False))
    with pytest.raises(TrainingInterrupted):
        fit_many(configs("cut"), RunOptions(stop_requested=stop_after(STEPS + 4),
                                            pictures=False))
    resumed = fit_many(configs("cut"), RunOptions(resume=True, pictures=False))
    for a, b in zip(full, resumed, strict=True):
        _assert_same_run(a, b)
        assert len({r["lr"] for r in a.history}) == 3


def test_plateau_models_follow_their_own_loss(tiny_dataset: str, tiny_dataset_dir: Path,
                                              tmp_path: Path) -> None:
    settings = {**SCHEDULES["plateau"], "lr": 1e-3}  # a rate at which the two losses differ
    configs = [_config(tiny_dataset, tiny_dataset_dir, tmp_path / f"z{z}", z_dim=z, **settings)
               for z in (2, 4)]
    together = fit_many(configs, RunOptions(pictures=False))
    for z, result in zip((2, 4), together, strict=True):
        alone = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / f"alone{z}", z_dim=z,
                            **settings), RunOptions(pictures=False))
        _assert_same_run(alone, result)


def test_resuming_with_another_length_of_a_laid_out_schedule_is_refused(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit(_config(tiny_dataset, tiny_dataset_dir, run, epochs=1, lr_schedule="burda"),
        RunOptions(pictures=False))
    with pytest.raises(VaelabError, match="epochs cannot change when resuming") as info:
        fit(_config(tiny_dataset, tiny_dataset_dir, run, epochs=2, lr_schedule="burda"),
            RunOptions(resume=True, pictures=False))
    assert "\n" not in str(info.value)
    with pytest.raises(VaelabError, match="adam_eps cannot change"):
        fit(_config(tiny_dataset, tiny_dataset_dir, run, epochs=1, lr_schedule="burda",
                    adam_eps=1e-4), RunOptions(resume=True, pictures=False))


def _edit_schedule(path: Path, edit: Any) -> None:
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
    state = json.loads(metadata["schedule"])
    edit(state)
    metadata["schedule"] = json.dumps(state)
    path.write_bytes(save(load_file(str(path)), metadata=metadata))


@pytest.mark.parametrize("edit", [
    lambda s: s.update(schedule="cosine"),
    lambda s: s["scheduler"].update(optimizer="not an optimizer"),
    lambda s: s["scheduler"].update(milestones={"__counter__": [[5, 1]]}),
    lambda s: s["scheduler"].update(last_epoch="many"),
    lambda s: s["scheduler"].update(_last_lr=[1e-3, 1e-3]),
    lambda s: s.update(last_lr="fast"),
], ids=["other schedule", "extra entry", "other milestones", "not a number", "other length",
        "last rate"])
def test_a_damaged_schedule_state_is_refused(edit: Any, tiny_dataset: str,
                                             tiny_dataset_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = _config(tiny_dataset, tiny_dataset_dir, run, lr_schedule="burda")
    with pytest.raises(TrainingInterrupted):
        fit(config, RunOptions(stop_requested=stop_after(4), pictures=False))
    _edit_schedule(run / "last.safetensors", edit)
    with pytest.raises(VaelabError, match="learning-rate schedule state cannot resume") as info:
        fit(config, RunOptions(resume=True, pictures=False))
    assert "\n" not in str(info.value) and str(run / "last.safetensors") in str(info.value)


def test_adam_settings_reach_every_optimizer(tiny_dataset: str, tiny_dataset_dir: Path,
                                             tmp_path: Path) -> None:
    adam = {"adam_eps": 1e-4, "adam_betas": (0.8, 0.99)}
    weights = {}
    for name, path in PATHS.items():
        for tag, settings in (("burda", adam), ("default", {})):
            out = tmp_path / f"{name}-{tag}"
            result = fit(_config(tiny_dataset, tiny_dataset_dir, out, epochs=1, **path,
                                 **settings), RunOptions(pictures=False))
            weights[name, tag] = next(result.model.parameters()).detach().clone()
            saved = read_checkpoint(out / "last.safetensors").optimizer_state
            assert saved is not None
            group = saved["param_groups"][0]
            assert group["eps"] == settings.get("adam_eps", 1e-8)
            assert tuple(group["betas"]) == settings.get("adam_betas", (0.9, 0.999))
        assert not torch.equal(weights[name, "burda"], weights[name, "default"])  # they acted


def test_state_encoding_round_trips_counters_and_infinities() -> None:
    from collections import Counter

    state = {"milestones": Counter({3: 1, 7: 2}), "best": float("inf"), "lrs": [1e-3],
             "lr": torch.tensor(2e-3), "mode": "min", "nested": [{"a": 1}]}
    encoded = encode_state(state)
    text = json.dumps(encoded)
    decoded = decode_state(json.loads(text))
    assert decoded["milestones"] == Counter({3: 1, 7: 2})
    assert isinstance(decoded["milestones"], Counter)
    assert decoded["best"] == float("inf") and decoded["lr"] == pytest.approx(2e-3)
    assert decoded["nested"] == [{"a": 1}] and decoded["mode"] == "min"


def test_the_trackers_are_told_each_epochs_rate(train_args: list[str], tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    from vaelab.cli.main import main
    from vaelab.trackers.tensorboard import scalar_tag

    assert main(["train", *train_args, "--epochs", "3", "--lr-schedule", "step",
                 "--lr-step-every", "1", "--lr-gamma", "0.5", "--tracker", "tensorboard"]) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={SCALARS: 0})
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars(scalar_tag("lr"))]
    assert logged == [(1, pytest.approx(1e-3, rel=1e-6)), (2, pytest.approx(5e-4, rel=1e-6)),
                      (3, pytest.approx(2.5e-4, rel=1e-6))]  # TensorBoard keeps float32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("stacked", [False, True], ids=["train_step", "stacked"])
def test_a_cuda_graph_step_follows_the_schedule(stacked: bool, tiny_dataset: str,
                                                tiny_dataset_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph bakes a float rate into its Adam kernel; the schedule's rate is a tensor there,
    so its cuts reach every replay: the graphed run follows the eager one."""
    settings = {"device": "cuda", **SCHEDULES["cosine"]}

    def train(folder: str) -> list[Any]:
        configs = [_config(tiny_dataset, tiny_dataset_dir, tmp_path / folder / f"z{z}",
                           z_dim=z, **settings) for z in ((2, 4) if stacked else (3,))]
        if stacked:  # StackedStep, one graph for the two models
            return fit_many(configs, RunOptions(pictures=False))
        return [fit(configs[0], RunOptions(pictures=False))]  # TrainStep's graph

    graphed = train("graphed")
    monkeypatch.setenv("VAELAB_CUDA_GRAPHS", "0")
    eager = train("eager")
    for a, b in zip(graphed, eager, strict=True):
        assert [r["lr"] for r in a.history] == pytest.approx([r["lr"] for r in b.history])
        for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
            torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-4)
    # The checkpoint holds the rate as a number (the step held it as a tensor).
    saved = read_checkpoint(graphed[0].run_dir / "last.safetensors")
    assert saved.optimizer_state is not None
    assert isinstance(saved.optimizer_state["param_groups"][0]["lr"], float)
