"""Whether the data a command reads is the data a run was trained on, from their provenance.

A run directory records its data's provenance (``Splits.provenance``: the dataset, its
format, the SHA-256 of its content and of each part, the held-out and validation splits).
``compare`` sets what a later command reads against that record:

* the same content (wherever it now lies): nothing to say;
* another dataset, named on purpose (``--dataset``): a warning, and the command goes on;
* the same dataset, changed: a warning, and the command goes on, except where the numbers
  would be meaningless: scores of a split drawn at random from a part that changed (the
  validation split always is; the test split when it was held out) may now include images
  the model was trained on, so ``DataChange.meaningless`` says why and the caller refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DataChange", "compare"]


@dataclass(frozen=True)
class DataChange:
    """How the data read now differs from the data a run was trained on."""

    trained_on: str  # the dataset the run recorded
    now: str  # the dataset read now
    other: bool  # another dataset was named, rather than the training data changed
    changed: tuple[str, ...]  # the parts whose content differs: "train", "test", "classes"
    was: str  # the recorded content SHA-256
    is_now: str  # the SHA-256 of what was read now
    test_held_out: bool  # the run's test split was held out of its training part

    def describe(self) -> str:
        """One clause: what differs."""
        if self.other:
            return (f"reading {self.now}, not {self.trained_on}, the data this run was "
                    "trained on")
        return (f"the data at {self.now} has changed since this run was trained (SHA-256 "
                f"{self.was[:12]} then, {self.is_now[:12]} now: {self._what()})")

    def _what(self) -> str:
        parts = [p for p in self.changed if p != "classes"]
        what = [f"its {' and '.join(parts)} part{'s' if len(parts) > 1 else ''}"] if parts \
            else []
        if "classes" in self.changed:
            what.append("its class names")
        return (" and ".join(what) or "its content") + " changed"

    def warning(self) -> str:
        """One line for a command that goes on."""
        if self.other:
            return self.describe()
        return f"{self.describe()}; what follows is for the data as it is now"

    def meaningless(self, split: str) -> str | None:
        """Why scores on ``split`` would mean nothing, or None when they still mean something."""
        if self.other or "train" not in self.changed:
            return None
        if split == "val":
            drawn = "the validation split is drawn"
        elif split == "test" and self.test_held_out:
            drawn = "the test split was held out"
        else:
            return None
        return (f"the data at {self.now} has changed since this run was trained, and {drawn} "
                "at random from its training part, so it may now hold images the model was "
                "trained on; restore the data, or name other data with --dataset")


def _parts(record: Mapping[str, Any]) -> Mapping[str, Any]:
    parts = record.get("parts")
    return parts if isinstance(parts, Mapping) else {}


def compare(recorded: Mapping[str, Any] | None, current: Mapping[str, Any],
            named: bool = False) -> DataChange | None:
    """How ``current`` differs from ``recorded`` (None: the same content, or nothing recorded).

    ``named``: the dataset was given explicitly rather than taken from the run.
    """
    if not recorded or "sha256" not in recorded:
        return None  # a run from before provenance was recorded
    if recorded.get("sha256") == current.get("sha256"):
        return None
    old, new = _parts(recorded), _parts(current)
    changed = [part for part in ("train", "test") if old.get(part) != new.get(part)]
    if recorded.get("class_names") != current.get("class_names"):
        changed.append("classes")
    held_out = recorded.get("test_split")
    return DataChange(
        trained_on=str(recorded.get("dataset")), now=str(current.get("dataset")),
        other=named and recorded.get("dataset") != current.get("dataset"),
        changed=tuple(changed), was=str(recorded.get("sha256")),
        is_now=str(current.get("sha256")),
        test_held_out=bool(isinstance(held_out, Mapping) and held_out.get("held_out")))
