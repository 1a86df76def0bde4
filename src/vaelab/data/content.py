"""A dataset as read: its train and test parts, its classes, and where it came from.

``DatasetContent`` is what every source (a registered dataset or a path) gives before the
validation split is carved; ``content_sha256`` is how a path's content is fingerprinted: the
SHA-256 of the decoded images and labels (not of the files' bytes, so compressing the same
arrays again, or renaming a folder, is no change).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DatasetContent", "content_sha256", "part_sha256"]

_DIGEST_FORMAT = b"vaelab-data-1\n"


@dataclass(frozen=True)
class DatasetContent:
    """uint8 images (N, 28, 28) and int labels (N,) or None of a dataset's train and test."""

    name: str  # a registered name, or the dataset's absolute path
    train_images: np.ndarray
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray | None
    class_names: tuple[str, ...]  # label -> readable name; () when unlabelled
    class_noun: str  # what one class is called in prose: "digit" for MNIST
    content_id: str  # a name for caches of things learnt from this data
    provenance: dict[str, Any] = field(default_factory=dict)  # the run's "data" section

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None

    @property
    def test_held_out(self) -> bool:
        return bool(self.provenance.get("test_split", {}).get("held_out"))


def part_sha256(images: np.ndarray, labels: np.ndarray | None) -> str:
    """SHA-256 of one part: its images (uint8) and labels (little-endian int64) with shapes."""
    digest = hashlib.sha256(_DIGEST_FORMAT)
    digest.update(f"images {images.shape}\n".encode())
    digest.update(np.ascontiguousarray(images, np.uint8).tobytes())
    if labels is not None:
        digest.update(f"labels {labels.shape}\n".encode())
        digest.update(np.ascontiguousarray(labels, "<i8").tobytes())
    return digest.hexdigest()


def content_sha256(parts: Mapping[str, str | None], class_names: tuple[str, ...]) -> str:
    """SHA-256 of a whole dataset from its parts' digests and its class names."""
    record = {"parts": dict(parts), "class_names": list(class_names)}
    return hashlib.sha256(_DIGEST_FORMAT + json.dumps(record, sort_keys=True).encode()
                          ).hexdigest()
