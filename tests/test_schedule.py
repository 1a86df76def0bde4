"""The KL warm-up against values worked out by hand: the ramp, reaching beta, progress inside an
epoch, and a run resumed in the middle of the warm-up; the shuffle of each epoch from its seed
(vaelab.training.schedule)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.training import RunOptions, TrainingInterrupted, fit
from vaelab.training.epoch import train_epoch
from vaelab.training.schedule import epoch_permutation, kl_weight, steps_per_epoch


def test_no_warmup_is_beta_from_the_first_step() -> None:
    config = TrainConfig(beta=0.5, kl_warmup=0)
    assert [kl_weight(config, e, s, 4) for e in (0, 3) for s in (0, 3)] == [0.5] * 4


def test_the_ramp_is_linear_over_the_warmup_epochs_and_then_holds_beta() -> None:
    # Two warm-up epochs of four steps each: beta / 8 more at every step, beta from epoch 2 on.
    config = TrainConfig(beta=1.0, kl_warmup=2)
    ramp = [kl_weight(config, epoch, step, 4) for epoch in range(3) for step in range(4)]
    assert ramp == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.0, 1.0, 1.0]
    assert kl_weight(config, 40, 3, 4) == 1.0  # never past beta
    # beta 4 over 4 epochs of 10 steps: at epoch 1, step 5 the run is 1.5 epochs in.
    assert kl_weight(TrainConfig(beta=4.0, kl_warmup=4), 1, 5, 10) == 1.5
    # One step per epoch: the weight moves once an epoch.
    assert [kl_weight(TrainConfig(beta=3.0, kl_warmup=3), e, 0, 1) for e in range(4)] == [
        0.0, 1.0, 2.0, 3.0]


class _Recorder:
    """A Step that trains nothing and keeps the KL weight of every call."""

    def __init__(self, config: TrainConfig, n_train: int) -> None:
        self.configs = [config]
        self.seeds = [config.seed]
        self.n_train = n_train
        self.device = torch.device("cpu")
        self.weights: list[float] = []

    def __call__(self, index: torch.Tensor, kl_weights: Sequence[float]) -> torch.Tensor:
        self.weights.extend(kl_weights)
        return torch.zeros(1, 3, dtype=torch.float64)


def test_each_step_of_an_epoch_gets_its_own_weight() -> None:
    # 100 images at batch 30: four steps, the last one of 10 images.
    config = TrainConfig(beta=2.0, kl_warmup=1, batch_size=30)
    assert steps_per_epoch(100, 30) == 4
    step = _Recorder(config, 100)
    assert train_epoch(step, 0)[1] == 4  # type: ignore[arg-type]
    assert step.weights == [0.0, 0.5, 1.0, 1.5]
    train_epoch(step, 1)  # type: ignore[arg-type]
    assert step.weights[4:] == [2.0] * 4


def test_an_epoch_resumed_at_a_step_continues_the_ramp() -> None:
    config = TrainConfig(beta=1.0, kl_warmup=2, batch_size=25)
    step = _Recorder(config, 100)
    assert train_epoch(step, 1, start_step=3)[1] == 4  # type: ignore[arg-type]
    assert step.weights == [0.875]  # epoch 1, step 3 of 4: 1.75 of 2 warm-up epochs


def _config(tiny_dataset: str, data_dir: Path, out: Path, **kw: object) -> TrainConfig:
    return TrainConfig(dataset=tiny_dataset, data_dir=str(data_dir), epochs=2, batch_size=64,
                       z_dim=4, device="cpu", out=str(out), **kw)  # type: ignore[arg-type]


def test_a_run_resumed_in_the_middle_of_the_warmup_matches_one_never_stopped(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> None:
    warm = dict(kl_warmup=3, beta=1.0)
    full = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "full", **warm),
               RunOptions(pictures=False))
    calls = {"n": 0}

    def stop_at_epoch_2_step_3() -> bool:  # 9 steps per epoch
        calls["n"] += 1
        return calls["n"] == 12

    cut = _config(tiny_dataset, tiny_dataset_dir, tmp_path / "cut", **warm)
    with pytest.raises(TrainingInterrupted):
        fit(cut, RunOptions(stop_requested=stop_at_epoch_2_step_3, pictures=False))
    resumed = fit(cut, RunOptions(resume=True, pictures=False))
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    # The warm-up did shape the run: with the KL weighted down, the posteriors stray further
    # from the prior than in the same run without it.
    plain = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "plain"),
                RunOptions(pictures=False))
    assert full.history[-1]["train_kl"] > plain.history[-1]["train_kl"] + 0.5


@pytest.mark.parametrize(("seed", "epoch", "generator_seed"), [
    (0, 0, 0), (1, 0, 1_000_003), (3, 2, 3_000_011), (2, 7, 2_000_013)])
def test_the_shuffle_of_an_epoch_is_randperm_seeded_with_seed_times_1000003_plus_epoch(
        seed: int, epoch: int, generator_seed: int) -> None:
    # The order a run saw is part of its record: a run resumed by a later version redraws the
    # same shuffles only while the seed of epoch e of seed s stays 1,000,003 s + e.
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(generator_seed))
    assert torch.equal(epoch_permutation(50, seed, epoch, torch.device("cpu")), expected)
