"""The reference rows' check and the abstention rates (vaelab.study.references)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from vaelab.study.references import abstention_rates, feature_check, share_se


def _row(fd: float, precision: float, recall: float, n: int = 10_000) -> dict[str, Any]:
    return {"fd": fd, "precision": precision, "recall": recall,
            "precision_se": share_se(precision, n), "recall_se": share_se(recall, n)}


def test_the_check_asks_real_images_to_beat_every_floor_beyond_their_noise() -> None:
    good = {"real": _row(4.7, 0.857, 0.866), "noise": _row(2288.0, 0.0, 0.0),
            "shuffled": _row(1120.0, 0.02, 0.0), "blends": _row(577.0, 0.30, 0.05)}
    assert feature_check(good) == {"precision": {"ordered": True, "failing": []},
                                   "recall": {"ordered": True, "failing": []},
                                   "fd": {"ordered": True, "failing": []}}
    # The old classifier's features: noise as "realistic" as real digits, shuffled more so.
    bad = {**good, "noise": _row(1129.9, 0.854, 0.0), "shuffled": _row(1193.3, 0.989, 0.0)}
    assert feature_check(bad)["precision"] == {"ordered": False,
                                               "failing": ["noise", "shuffled"]}
    assert feature_check(bad)["recall"]["ordered"]
    # Within the noise of a share of 10,000 (sd about 0.0035 each): not ordered.
    close = {**good, "blends": _row(577.0, 0.852, 0.05)}
    assert feature_check(close)["precision"]["failing"] == ["blends"]
    far = {**good, "blends": _row(577.0, 0.84, 0.05)}
    assert feature_check(far)["precision"]["ordered"]
    assert feature_check({**good, "noise": _row(3.0, 0.0, 0.0)})["fd"]["failing"] == ["noise"]
    assert share_se(0.5, 100) == pytest.approx(0.05) and share_se(0.0, 10) == 0.0


class _Refuser:
    """Refuses every image with ink in its top row."""

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        top = images.reshape(len(images), 28, 28)[:, 0].amax(1) > 0.2
        return np.where(top.numpy(), -1, 3), np.full(len(images), 0.9)


def test_abstention_rates_count_refusals_and_low_confidence() -> None:
    from vaelab.data.datasets import Splits
    from vaelab.evaluation.classifier import Outputs

    n = 100
    test = np.zeros((n, 28, 28), np.uint8)
    test[:10, 0] = 255  # ten clean images with ink in the top row: refused
    test[:, 10:14, 5:20] = 200
    labels = np.arange(n) % 2
    empty = np.zeros((0, 28, 28), np.uint8)
    splits = Splits("toy", empty, np.zeros(0, np.int64), empty, np.zeros(0, np.int64), test,
                    labels, tuple("01"), "digit")
    clean_labels, confidence = _Refuser().predict(torch.from_numpy(test).float() / 255)
    confidence[10:15] = 0.3  # five more below min_confidence
    clean = Outputs(clean_labels, confidence, np.zeros((n, 128)))
    noise = torch.ones(n, 1, 28, 28)  # ink everywhere: every one refused
    found = abstention_rates(_Refuser(), splits, 0.5, clean, noise)  # type: ignore[arg-type]
    rates = found["rates"]
    assert rates["clean"] == {"refused": 0.15, "se": pytest.approx(math.sqrt(0.15 * 0.85 / n))}
    assert rates["noise"]["refused"] == 1.0
    assert set(rates) == {"clean", "blends", "blurred", "noise", "shuffled"}
    assert found["n"] == n and found["min_confidence"] == 0.5
