"""The learning-rate schedules against hand values, and the rules between their settings.

Each schedule is driven the way a run drives it (``RunSchedule.after_step`` after every
optimisation step, ``after_epoch`` at every epoch end) on a real Adam, and the rate each step
uses is compared with a value worked out by hand from the paper or the formula.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.lr_schedules import (
    BURDA_GAMMA,
    BURDA_PASSES,
    LR_SCHEDULES,
    burda_milestones,
    resume_problem,
)
from vaelab.settings import SettingError
from vaelab.training.lr_schedule import RunSchedule


def _rates(config: TrainConfig, steps_per_epoch: int,
           losses: list[float] | None = None) -> list[float]:
    """The rate every optimisation step of the run uses, as the lifecycle steps the schedule."""
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([param], lr=config.lr)
    schedule = RunSchedule(config, optimizer, steps_per_epoch)
    rates = []
    for epoch in range(config.epochs):
        for _ in range(steps_per_epoch):
            param.grad = torch.ones(3)
            optimizer.step()
            rates.append(float(optimizer.param_groups[0]["lr"]))
            schedule.after_step()
        assert schedule.epoch_lr() == rates[-1]  # what metrics.jsonl records for the epoch
        schedule.after_epoch(losses[epoch] if losses else 0.0)
    return rates


def test_the_registry_holds_the_five_schedules() -> None:
    assert LR_SCHEDULES.names() == ["burda", "constant", "cosine", "plateau", "step"]
    assert TrainConfig().lr_schedule == "constant"


def test_constant_keeps_the_rate() -> None:
    assert _rates(TrainConfig(lr=3e-4, epochs=3), 4) == [3e-4] * 12


def test_burda_at_full_length_cuts_after_epochs_1_4_13_40_121_364_1093() -> None:
    assert BURDA_PASSES == 3280
    assert burda_milestones(3280, 1) == [1, 4, 13, 40, 121, 364, 1093]
    assert burda_milestones(3280, 3) == [3, 12, 39, 120, 363, 1092, 3279]
    rates = _rates(TrainConfig(lr_schedule="burda", epochs=3280), 1)
    # Epoch (0-based) -> stage i by hand: 3^0 = 1 pass, then 3, 9, 27, 81, 243, 729, 2187.
    stages = {0: 0, 1: 1, 3: 1, 4: 2, 12: 2, 13: 3, 39: 3, 40: 4, 120: 4, 121: 5, 363: 5,
              364: 6, 1092: 6, 1093: 7, 2000: 7, 3279: 7}
    for epoch, i in stages.items():
        assert rates[epoch] == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-12), epoch
    assert rates[-1] == pytest.approx(1e-4, rel=1e-12)  # lr * 10^(-7/7)
    assert abs(BURDA_GAMMA ** 7 - 0.1) < 1e-15  # one decade over the seven cuts


def test_burda_compressed_keeps_its_stages_in_steps() -> None:
    # 20 epochs of 30 steps: stage ends at 600 * (1, 4, 13, 40, 121, 364, 1093) / 3280 steps
    # = 0.18, 0.73, 2.38, 7.32, 22.1, 66.6, 199.9, rounded: 0, 1, 2, 7, 22, 67, 200.
    assert burda_milestones(20, 30) == [0, 1, 2, 7, 22, 67, 200]
    rates = _rates(TrainConfig(lr_schedule="burda", epochs=20), 30)
    assert len(rates) == 600
    # Step (0-based) -> stages done: stage 0 (under half a step) is skipped altogether.
    done = {0: 1, 1: 2, 2: 3, 6: 3, 7: 4, 21: 4, 22: 5, 66: 5, 67: 6, 199: 6, 200: 7, 599: 7}
    for step, i in done.items():
        assert rates[step] == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-12), step


def test_cosine_without_warm_up() -> None:
    rates = _rates(TrainConfig(lr_schedule="cosine", epochs=10), 1)
    hand = {0: 1e-3, 5: 5e-4, 9: 0.5e-3 * (1 + math.cos(0.9 * math.pi))}
    for step, value in hand.items():
        assert rates[step] == pytest.approx(value, rel=1e-9, abs=1e-15), step


def test_cosine_with_warm_up_and_a_floor() -> None:
    config = TrainConfig(lr_schedule="cosine", epochs=10, lr_warmup=2, lr_min=1e-4)
    rates = _rates(config, 2)  # 4 warm-up steps, then a cosine over 16 steps
    # Warm-up: LinearLR from lr / 4, rising by (1 - 1/4) / 4 of lr per step.
    for step, factor in {0: 0.25, 1: 0.4375, 2: 0.625, 3: 0.8125}.items():
        assert rates[step] == pytest.approx(1e-3 * factor, rel=1e-9), step
    # Cosine from step 4: lr_min + (lr - lr_min) (1 + cos(pi t / 16)) / 2.
    for t in (0, 8, 15):
        value = 1e-4 + 0.9e-3 * (1 + math.cos(math.pi * t / 16)) / 2
        assert rates[4 + t] == pytest.approx(value, rel=1e-9), t


def test_step_cuts_every_few_epochs() -> None:
    rates = _rates(TrainConfig(lr_schedule="step", epochs=10, lr_step_every=3, lr_gamma=0.5), 2)
    assert rates[:6] == [1e-3] * 6
    assert rates[6:12] == pytest.approx([5e-4] * 6)
    assert rates[12:18] == pytest.approx([2.5e-4] * 6)
    assert rates[18:] == pytest.approx([1.25e-4] * 2)


def test_plateau_cuts_after_patience_epochs_without_improvement() -> None:
    config = TrainConfig(lr_schedule="plateau", epochs=7, lr_patience=1, lr_gamma=0.1)
    # Losses by epoch: best 4 at epoch 1; epochs 2 and 3 do not improve (2 > patience 1), so
    # the rate is cut after epoch 3; epoch 5 improves; epoch 6 is the first bad one again.
    rates = _rates(config, 2, losses=[5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0])
    per_epoch = rates[1::2]
    assert per_epoch == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4])


def test_plateau_stops_at_its_floor() -> None:
    config = TrainConfig(lr_schedule="plateau", epochs=6, lr_patience=0, lr_min=1e-5)
    # The first epoch improves on nothing measured (inf); then it never improves, and with no
    # patience every later epoch cuts, until the floor.
    rates = _rates(config, 1, losses=[1.0] * 6)
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5, 1e-5, 1e-5])


@pytest.mark.parametrize(("settings", "words"), [
    ({"lr_schedule": "step"}, ("lr_step_every", "positive")),
    ({"lr_warmup": 1}, ("lr_warmup", "unless lr_schedule is cosine")),
    ({"lr_schedule": "burda", "lr_step_every": 2}, ("lr_step_every", "unless", "step")),
    ({"lr_schedule": "cosine", "lr_warmup": 10, "epochs": 10}, ("lr_warmup", "fewer epochs")),
    ({"lr_schedule": "plateau", "lr_min": 1e-3}, ("lr_min", "below lr")),
    ({"lr_schedule": "linear"}, ("lr_schedule", "one of")),
    ({"lr_gamma": 1.0}, ("lr_gamma", "less than 1")),
    ({"adam_betas": (0.9, 1.0)}, ("adam_betas", "less than 1")),
    ({"adam_betas": (0.9,)}, ("adam_betas", "two numbers")),
    ({"adam_eps": 0.0}, ("adam_eps", "greater than 0")),
])
def test_bad_schedule_settings_are_one_line_errors(settings: dict[str, Any],
                                                   words: tuple[str, ...]) -> None:
    with pytest.raises(SettingError) as info:
        TrainConfig(**settings)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_resume_refuses_what_the_checkpoint_fixes() -> None:
    saved = TrainConfig(lr_schedule="burda", epochs=20)
    assert resume_problem(saved, TrainConfig(lr_schedule="burda", epochs=20, out="x")) is None
    for change in ({"epochs": 40}, {"batch_size": 64}, {"lr": 3e-4}, {"adam_eps": 1e-4},
                   {"lr_schedule": "constant"}):
        problem = resume_problem(saved, TrainConfig(**{"lr_schedule": "burda", "epochs": 20,
                                                       **change}))
        assert problem is not None and next(iter(change)) in problem, change
    # A constant rate is not laid out over the run: a resumed run may be extended.
    assert resume_problem(TrainConfig(epochs=2), TrainConfig(epochs=5)) is None
