"""The noise of the study's comparisons (vaelab.study.noise) on constructed histories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaelab.study.noise import compare, epoch_spread, epoch_window, noise_table


def _history(values: list[float], key: str = "val_loss") -> list[dict[str, float]]:
    return [{"epoch": i + 1, key: v} for i, v in enumerate(values)]


def test_epoch_spread_is_the_scatter_around_the_trend_of_the_last_epochs() -> None:
    # Falling by 2 nats an epoch with +-0.5 around that line: the trend is not noise.
    values = [200.0 - 2 * i + (0.5 if i % 2 else -0.5) for i in range(10)]
    window = epoch_window(10)
    assert window == 5  # the second half of training
    tail = values[-5:]
    # Residuals of a least-squares line through five alternating points.
    x = np.arange(5.0)
    slope, intercept = np.polyfit(x, tail, 1)
    expected = math.sqrt(((np.array(tail) - slope * x - intercept) ** 2).sum() / 3)
    assert epoch_spread(_history(values), "val_loss") == pytest.approx(expected)
    assert 0.4 < expected < 0.7  # near the 0.5 put in, nowhere near the 2-nat-an-epoch trend
    assert epoch_window(100) == 10 and epoch_window(4) == 4 and epoch_window(3) == 0
    assert epoch_spread(_history([1.0, 2.0, 3.0]), "val_loss") is None
    assert epoch_spread(_history([1.0] * 8), "other") is None


def test_comparisons_count_only_beyond_twice_the_combined_noise() -> None:
    found = compare(100.0, 103.0, 1.0, 1.0)  # combined sqrt(2) = 1.41; twice that 2.83
    assert found.difference == 3.0 and found.separated
    assert found.noise == pytest.approx(math.sqrt(2))
    assert found.bound == pytest.approx(2.828, abs=1e-3)
    assert not compare(100.0, 102.5, 1.0, 1.0).separated
    unknown = compare(100.0, 150.0, None, 1.0)
    assert not unknown.separated and not unknown.measured and unknown.bound is None


def _record(z: int, seed: int, neg_elbo: float, fd: float, draws: list[float]
            ) -> dict[str, object]:
    return {"z_dim": z, "seed": seed,
            "test": {"neg_elbo": neg_elbo, "recon_bce": neg_elbo - 5, "kl": 5.0},
            "information": {"i_q": 4.0 + seed, "i_q_se": 0.03},
            "sample_quality": {"fd": fd, "precision": 0.5, "recall": 0.5},
            "sample_draws": [{"fd": d, "precision": 0.5, "recall": 0.5} for d in draws]}


def test_one_seed_takes_epochs_and_prior_draws_several_seeds_take_the_seeds() -> None:
    history = _history([110.0, 105.0, 104.0, 103.5, 103.0, 102.9, 103.2, 102.8], "val_loss")
    for r in history:
        r.update(val_recon=r["val_loss"] - 5, val_kl=5.0 + 0.1 * (r["epoch"] % 2))
    one = noise_table([_record(2, 1, 100.0, 50.0, [50.0, 52.0, 54.0])], {(2, 1): history})
    assert one["neg_elbo"]["2"]["value"] == pytest.approx(epoch_spread(history, "val_loss"))
    assert one["neg_elbo"]["2"]["source"] == "sd of the last 4 epochs' val_loss around its trend"
    assert one["fd"]["2"] == {"value": pytest.approx(2.0), "source": "sd across 3 prior draws"}
    kl = epoch_spread(history, "val_kl")
    assert kl is not None
    assert one["i_q"]["2"]["value"] == pytest.approx(math.hypot(kl, 0.03))
    short = noise_table([_record(2, 1, 100.0, 50.0, [50.0])], {(2, 1): history[:2]})
    assert short["neg_elbo"]["2"]["value"] is None
    assert short["i_q"]["2"]["value"] == pytest.approx(0.03)  # the estimate's own error
    several = noise_table([_record(2, 1, 100.0, 50.0, [50.0]), _record(2, 2, 104.0, 58.0, [58.0])],
                          {})
    assert several["neg_elbo"]["2"] == {"value": pytest.approx(math.sqrt(8)),
                                        "source": "sd across 2 seeds"}
    assert several["fd"]["2"]["value"] == pytest.approx(math.sqrt(32))
    assert several["i_q"]["2"]["value"] == pytest.approx(math.sqrt(0.5))
