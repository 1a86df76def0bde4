"""What the pixel settings mean for a training run: ``--binarize static`` thresholds each image
once, at half intensity, and every epoch sees that same binary image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import epoch_records
from vaelab.cli.main import main
from vaelab.data import load_splits
from vaelab.runs.rebuild import load_run

pytestmark = pytest.mark.usefixtures("one_thread")


def _digits(path: Path, threshold: bool) -> Path:
    """600 training and 100 test digits of mnist-sample as an .npz; with ``threshold``, every
    pixel above half intensity made white and every other black."""
    splits = load_splits("mnist-sample", None, 0)
    train, test = splits.train_images[:600], splits.test_images[:100]
    if threshold:
        train, test = (np.where(v / 255 > 0.5, 255, 0).astype(np.uint8) for v in (train, test))
    np.savez(path, x_train=train, x_test=test)
    return path


def _train(data: Path, out: Path, binarize: str, extra: list[str]) -> Path:
    assert main(["train", "--dataset", str(data), "--binarize", binarize, "--epochs", "2",
                 "--batch-size", "64", "--z-dim", "4", "--device", "cpu", "--out", str(out),
                 *extra]) == 0
    return out


@pytest.mark.parametrize("extra", [[], ["--iw-samples", "2"]],
                         ids=["stacked-step", "autograd-step"])
def test_static_binarisation_trains_as_on_digits_thresholded_once(
        extra: list[str], tmp_path: Path) -> None:
    """A static run on grey digits and an unbinarised run on the same digits thresholded
    beforehand take the same steps: the same losses every epoch, the same weights."""
    static = _train(_digits(tmp_path / "grey.npz", threshold=False), tmp_path / "static",
                    "static", extra)
    plain = _train(_digits(tmp_path / "binary.npz", threshold=True), tmp_path / "plain",
                   "none", extra)
    without_time = [[{k: v for k, v in r.items() if k != "seconds"} for r in epoch_records(run)]
                    for run in (static, plain)]
    assert without_time[0] == without_time[1]
    for which in ("best", "last"):
        weights = [load_run(run, which=which).model.state_dict() for run in (static, plain)]
        assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
