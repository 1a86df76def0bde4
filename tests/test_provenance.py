"""vaelab.data.provenance: when a command's data differs from a run's, and when that matters.

Each rule is checked where it must fire and where it must not.
"""

from __future__ import annotations

from typing import Any

import pytest

from vaelab.data.provenance import compare


def _record(train: str = "t1", test: str | None = "s1", held_out: bool = False,
            names: tuple[str, ...] = ("0", "1"), dataset: str = "/data/set.npz"
            ) -> dict[str, Any]:
    return {"dataset": dataset, "sha256": f"{train}{test}{names}", "parts": {"train": train,
            "test": test}, "class_names": list(names), "test_split": {"held_out": held_out}}


def test_same_content_anywhere_is_no_change() -> None:
    assert compare(_record(), _record()) is None
    assert compare(_record(), _record(dataset="/moved/set.npz"), named=True) is None


def test_a_run_without_a_record_is_not_compared() -> None:
    assert compare({}, _record()) is None
    assert compare(None, _record()) is None


def test_changed_parts_are_named() -> None:
    change = compare(_record(), _record(test="s2"))
    assert change is not None and change.changed == ("test",) and not change.other
    assert "its test part changed" in change.warning()
    both = compare(_record(), _record(train="t2", test="s2", names=("a", "b")))
    assert both is not None and both.changed == ("train", "test", "classes")
    assert "its train and test parts and its class names changed" in both.describe()


@pytest.mark.parametrize(("held_out", "changed_train", "split", "refused"), [
    (False, True, "val", True),     # validation is always drawn at random from train
    (False, True, "test", False),   # a test file of its own still holds unseen images
    (False, True, "train", False),
    (True, True, "test", True),     # a held-out test split was drawn from the changed part
    (True, False, "test", False),   # only the class names changed: the draw still holds
    (False, False, "val", False),
])
def test_scores_of_random_splits_of_a_changed_part_mean_nothing(
        held_out: bool, changed_train: bool, split: str, refused: bool) -> None:
    recorded = _record(test=None if held_out else "s1", held_out=held_out)
    current = _record(train="t2" if changed_train else "t1", test=None if held_out else "s1",
                      held_out=held_out, names=("0", "1") if changed_train else ("a", "b"))
    change = compare(recorded, current)
    assert change is not None
    reason = change.meaningless(split)
    assert (reason is not None) == refused, reason
    if refused:
        assert "may now hold images the model was trained on" in str(reason)
        assert "--dataset" in str(reason)


def test_other_data_named_on_purpose_is_a_warning_only() -> None:
    change = compare(_record(), _record(train="t9", dataset="/other.npz"), named=True)
    assert change is not None and change.other
    assert change.meaningless("val") is None
    assert change.warning() == ("reading /other.npz, not /data/set.npz, the data this run was "
                                "trained on")
    # The same path given again is the same dataset, changed: not "other".
    same = compare(_record(), _record(train="t9"), named=True)
    assert same is not None and not same.other and same.meaningless("val")
