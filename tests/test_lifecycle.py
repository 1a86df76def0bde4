from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import epoch_records, lowest_epoch, write_sample_digits
from vaelab.cli.main import main
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.evaluation.elbo import evaluate
from vaelab.runs.checkpoint import read_checkpoint
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, fit
from vaelab.training.schedule import epoch_permutation


def _config(tiny_dataset: str, tiny_dataset_dir: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(
        dataset=tiny_dataset,
        data_dir=str(tiny_dataset_dir),
        epochs=2,
        batch_size=64,
        z_dim=4,
        device="cpu",
        out=str(out),
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_fit_writes_run_directory(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    result = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "run"))
    run = tmp_path / "run"
    for name in (
        "config.json",
        "provenance.json",
        "metrics.jsonl",
        "last.safetensors",
        "best.safetensors",
        "loss_curves.png",
        "reconstructions.png",
        "samples.png",
    ):
        assert (run / name).is_file(), name
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl"} <= set(
        lines[0]
    )
    assert lines[1]["train_loss"] < lines[0]["train_loss"]
    assert result.best_val == min(r["val_loss"] for r in lines)
    assert json.loads((run / "config.json").read_text())["z_dim"] == 4


def test_training_is_deterministic_on_cpu(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    a = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "a"), RunOptions(pictures=False))
    b = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "b"), RunOptions(pictures=False))
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]


def test_resume_matches_uninterrupted_run(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    full = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "full", epochs=3),
               RunOptions(pictures=False))
    fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "part", epochs=1),
        RunOptions(pictures=False))
    resumed = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "part", epochs=3),
                  RunOptions(resume=True, pictures=False))
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert [r["val_loss"] for r in full.history] == [r["val_loss"] for r in resumed.history]


def test_resume_mid_epoch_matches(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    from vaelab.training import TrainingInterrupted

    full = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "full"),
               RunOptions(pictures=False))
    calls = {"n": 0}

    def stop_after_12() -> bool:
        calls["n"] += 1
        return calls["n"] == 12  # 9 steps per epoch: stops at epoch 2, step 3

    with pytest.raises(TrainingInterrupted, match="resume"):
        fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "cut"),
            RunOptions(stop_requested=stop_after_12, pictures=False))
    state = read_checkpoint(tmp_path / "cut" / "last.safetensors").state
    assert state is not None and (state.epoch, state.step) == (1, 3)
    resumed = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "cut"),
                  RunOptions(resume=True, pictures=False))
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert full.history == [
        {**r, "seconds": f["seconds"]} for r, f in zip(resumed.history, full.history, strict=True)
    ]


def test_resumed_epoch_counts_the_seconds_before_its_interruption(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    import time

    from vaelab.training import TrainingInterrupted

    pause = 0.5  # seconds spent inside epoch 2 before it is interrupted
    calls = {"n": 0}

    def slow_stop_after_12() -> bool:
        calls["n"] += 1
        if calls["n"] > 9:  # epoch 2 (9 steps per epoch): its first 3 steps take >= pause
            time.sleep(pause / 3)
        return calls["n"] == 12

    with pytest.raises(TrainingInterrupted):
        fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "cut"),
            RunOptions(stop_requested=slow_stop_after_12, pictures=False))
    state = read_checkpoint(tmp_path / "cut" / "last.safetensors").state
    assert state is not None and state.running_seconds >= pause
    resumed = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "cut"),
                  RunOptions(resume=True, pictures=False))
    assert resumed.history[1]["seconds"] >= pause
    final = read_checkpoint(tmp_path / "cut" / "last.safetensors").state
    assert final is not None and final.running_seconds == 0.0


def test_save_load_gives_identical_outputs(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    result = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "run", epochs=1, model="conv"),
                 RunOptions(pictures=False))
    loaded = load_run(tmp_path / "run", which="last")
    result.model.eval()
    x = torch.rand(7, 1, 28, 28)
    z = torch.randn(7, 4)
    assert torch.equal(result.model.decode(z), loaded.model.decode(z))
    assert all(
        torch.equal(a, b)
        for a, b in zip(result.model.encode(x), loaded.model.encode(x), strict=True)
    )


def test_epoch_permutation_is_a_permutation() -> None:
    perm = epoch_permutation(100, seed=3, epoch=2, device=torch.device("cpu"))
    assert sorted(perm.tolist()) == list(range(100))
    assert torch.equal(perm, epoch_permutation(100, 3, 2, torch.device("cpu")))
    assert not torch.equal(perm, epoch_permutation(100, 3, 3, torch.device("cpu")))


def test_existing_run_is_not_overwritten(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path
) -> None:
    from vaelab.errors import VaelabError

    config = _config(tiny_dataset, tiny_dataset_dir, tmp_path / "run", epochs=1)
    fit(config, RunOptions(pictures=False))
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    with pytest.raises(VaelabError, match="--resume"):
        fit(config, RunOptions(pictures=False))
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before


def test_best_checkpoint_is_the_epoch_of_lowest_validation_loss(overfitting_run: Path) -> None:
    records = epoch_records(overfitting_run)
    best_epoch, last_epoch = lowest_epoch(records, "val_loss"), records[-1]["epoch"]
    assert best_epoch < last_epoch, "the validation loss never rose: best and last coincide"
    # The training loss went on falling, so a best chosen by it would be another epoch.
    assert lowest_epoch(records, "train_loss") != best_epoch
    best = read_checkpoint(overfitting_run / "best.safetensors").state
    last = read_checkpoint(overfitting_run / "last.safetensors").state
    assert best is not None and last is not None
    assert (best.epoch, best.best_epoch) == (best_epoch, best_epoch)
    assert best.best_val == records[best_epoch - 1]["val_loss"]
    assert (last.epoch, last.best_epoch, last.best_val) == (last_epoch, best_epoch, best.best_val)
    # The weights are that epoch's: scored again, each checkpoint gives its epoch's loss.
    config = load_run(overfitting_run).config
    val = load_splits(config.dataset, config.data_dir, config.val_size).val_images
    for which, epoch in (("best", best_epoch), ("last", last_epoch)):
        score = evaluate(load_run(overfitting_run, which=which).model, torch.from_numpy(val))
        assert score["neg_elbo"] == pytest.approx(records[epoch - 1]["val_loss"], rel=1e-6), which


def test_without_validation_the_best_checkpoint_is_the_epoch_of_lowest_training_loss(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ten digits, one step an epoch, and a KL weight warming up to 10 over four epochs: the
    third epoch's loss weighs the KL twice as heavily as the second's, after the KL grew while
    its weight was small, and is the higher."""
    data = write_sample_digits(tmp_path / "digits.npz", 10)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--val-size", "0", "--epochs", "3",
                 "--batch-size", "64", "--lr", "0.01", "--beta", "10", "--kl-warmup", "4",
                 "--z-dim", "4", "--device", "cpu", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    records = epoch_records(run)
    assert all("val_loss" not in record for record in records)
    best_epoch = lowest_epoch(records, "train_loss")
    assert best_epoch < records[-1]["epoch"], "the training loss never rose: best is last"
    best = read_checkpoint(run / "best.safetensors").state
    assert best is not None
    assert (best.epoch, best.best_epoch) == (best_epoch, best_epoch)
    assert best.best_val == records[best_epoch - 1]["train_loss"]
    assert f"best training loss {best.best_val:.2f} nats" in out
    weights = [load_run(run, which=which).model.state_dict() for which in ("best", "last")]
    assert any(not torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
