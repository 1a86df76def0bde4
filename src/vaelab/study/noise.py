"""The noise every comparison of the study is measured against, from the study itself.

A difference between two z_dims means something only beside the variation the same numbers show
without any change of z_dim. This module is the one owner of where that variation comes from
and of when a difference counts:

- with several seeds per z_dim: the standard deviation across seeds (each seed also draws its
  own prior samples, so it covers the draw-to-draw variation too);
- with one seed: for the test losses, the standard deviation of the validation values (negative
  ELBO, BCE, KL) of the last epochs around their straight-line trend — how much the model's
  score moves from one epoch to the next, not how far it is still falling (``epoch_spread``:
  the second half of training, at most ``LAST_EPOCHS`` and at least ``MIN_EPOCHS`` epochs);
  for the Fréchet distance, precision and recall, the standard
  deviation across ``PRIOR_DRAWS`` independent draws of prior samples; for I_q, the validation
  KL's spread (I_q is part of the KL term) and the estimator's standard error, combined.

Two values count as separated when their difference exceeds ``MARGIN`` times the combined noise
sqrt(n_a² + n_b²) — about a 95 % interval if the noise were normal and exactly known; with 2-5
seeds it is neither, so sentences state the seeds and their values and never speak of
significance. Where no noise could be measured (fewer than ``MIN_EPOCHS`` epochs and one seed),
nothing is called separated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LAST_EPOCHS", "MARGIN", "MIN_EPOCHS", "PRIOR_DRAWS", "Comparison", "compare",
           "epoch_spread", "epoch_window", "noise_table", "spread_of"]

LAST_EPOCHS = 10  # the most epochs at the end of training whose validation values give the noise
MIN_EPOCHS = 4  # fewer epochs than this: no epoch-to-epoch noise is measured (a line through
# the values leaves MIN_EPOCHS - 2 degrees of freedom)
PRIOR_DRAWS = 3  # independent draws of prior samples per model when there is one seed
MARGIN = 2.0  # a difference counts when it exceeds this many combined noise figures

# One-seed noise: the measure -> the validation key of metrics.jsonl whose spread stands for it.
_EPOCH_KEYS = {"neg_elbo": "val_loss", "recon_bce": "val_recon", "kl": "val_kl",
               "i_q": "val_kl"}
_DRAW_MEASURES = ("fd", "precision", "recall")


def spread_of(values: Sequence[float]) -> float | None:
    """Sample standard deviation; None for fewer than two values."""
    return float(np.std(np.asarray(values, dtype=np.float64), ddof=1)) if len(values) > 1 \
        else None


def epoch_window(n_epochs: int) -> int:
    """How many of the last epochs give the noise: the second half of training, at most
    ``LAST_EPOCHS``, and none (0) below ``MIN_EPOCHS``."""
    window = min(LAST_EPOCHS, max(MIN_EPOCHS, n_epochs // 2))
    return window if n_epochs >= window else 0


def epoch_spread(history: Sequence[dict[str, Any]], key: str) -> float | None:
    """The standard deviation of ``key`` over the last ``epoch_window`` epoch records around
    their least-squares line (two degrees of freedom used); None with too few epochs."""
    values = [float(r[key]) for r in history if key in r]
    window = epoch_window(len(values))
    if not window:
        return None
    y = np.asarray(values[-window:], dtype=np.float64)
    x = np.arange(window, dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    return float(np.sqrt((residuals ** 2).sum() / (window - 2)))


def _epochs_source(n: int, key: str) -> str:
    return f"sd of the last {n} epochs' {key} around its trend"


def noise_table(records: Sequence[dict[str, Any]],
                histories: Mapping[tuple[int, int], Sequence[dict[str, Any]]]
                ) -> dict[str, dict[str, dict[str, Any]]]:
    """measure -> str(z_dim) -> {"value": float | None, "source": str}.

    ``records`` are the run records of results.json; ``histories`` each (z_dim, seed)'s
    metrics.jsonl records (for one seed).
    """
    z_dims = sorted({int(r["z_dim"]) for r in records})
    seeds = sorted({int(r["seed"]) for r in records})
    measures = ["neg_elbo", "recon_bce", "kl", "i_q", *_DRAW_MEASURES]
    table: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in measures}
    for z in z_dims:
        chosen = [r for r in records if r["z_dim"] == z]
        for measure in measures:
            if len(seeds) > 1:
                values = [_value(r, measure) for r in chosen]
                known = [v for v in values if v is not None]
                table[measure][str(z)] = {"value": spread_of(known),
                                          "source": f"sd across {len(seeds)} seeds"}
            else:
                table[measure][str(z)] = _one_seed(chosen[0], histories.get((z, seeds[0]), []),
                                                   measure)
    return table


def _one_seed(record: dict[str, Any], history: Sequence[dict[str, Any]],
              measure: str) -> dict[str, Any]:
    if measure in _DRAW_MEASURES:
        draws = [d[measure] for d in record.get("sample_draws", [])]
        return {"value": spread_of(draws), "source": f"sd across {len(draws)} prior draws"}
    key = _EPOCH_KEYS[measure]
    spread = epoch_spread(history, key)
    n = epoch_window(len([r for r in history if key in r]))
    if measure == "i_q":
        se = float(record.get("information", {}).get("i_q_se", 0.0))
        if spread is None:
            return {"value": se, "source": "the estimate's standard error (fewer than "
                    f"{MIN_EPOCHS} epochs: no epoch-to-epoch spread)"}
        return {"value": math.hypot(spread, se),
                "source": f"{_epochs_source(n, key)} and the estimate's standard error"}
    if spread is None:
        return {"value": None, "source": f"not measured: fewer than {MIN_EPOCHS} epochs"}
    return {"value": spread, "source": _epochs_source(n, key)}


def _value(record: dict[str, Any], measure: str) -> float | None:
    if measure in _DRAW_MEASURES:
        return float(record["sample_quality"][measure]) if "sample_quality" in record else None
    if measure == "i_q":
        return float(record["information"]["i_q"]) if "information" in record else None
    return float(record["test"][measure])


@dataclass(frozen=True)
class Comparison:
    """A difference beside the noise it is judged against."""

    difference: float  # b - a, in the measure's unit
    noise: float | None  # combined noise sqrt(n_a² + n_b²); None when not measured
    separated: bool  # |difference| > MARGIN * noise

    @property
    def measured(self) -> bool:
        return self.noise is not None

    @property
    def bound(self) -> float | None:
        """The difference a separation needs: MARGIN times the combined noise."""
        return None if self.noise is None else MARGIN * self.noise


def compare(a: float, b: float, noise_a: float | None, noise_b: float | None) -> Comparison:
    """b - a judged against the combined noise of a and b."""
    difference = b - a
    if noise_a is None or noise_b is None:
        return Comparison(difference, None, False)
    combined = math.hypot(noise_a, noise_b)
    return Comparison(difference, combined, abs(difference) > MARGIN * combined)
