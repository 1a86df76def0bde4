"""vaelab.study.stages: seconds per named stage, accumulated over repeated entries."""

from __future__ import annotations

import time

import pytest

from vaelab.study.stages import Stages


def test_each_stage_accumulates_its_own_seconds_in_first_run_order() -> None:
    stages = Stages()
    with stages.time("b"):
        time.sleep(0.05)
    with stages.time("a"):
        pass
    with stages.time("b"):
        time.sleep(0.05)
    seconds = stages.to_dict()
    assert list(seconds) == ["b", "a"]
    assert seconds["b"] >= 0.1 and seconds["a"] < 0.05


def test_a_stage_that_raises_still_counts() -> None:
    stages = Stages()
    with pytest.raises(RuntimeError), stages.time("failing"):
        time.sleep(0.02)
        raise RuntimeError("boom")
    assert stages.to_dict()["failing"] >= 0.02
