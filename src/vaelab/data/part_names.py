"""Which part of a dataset a file holds, read from its name: the one rule for every format.

Data sets that ship as separate files name their parts: ``train-images-idx3-ubyte.gz``
(MNIST, KMNIST), ``emnist-letters-test-labels-idx1-ubyte.gz`` (EMNIST),
``kmnist-train-imgs.npz`` (KMNIST, K-49), ``x_train.npy``. A name is split into words at
``-``, ``_``, ``.`` and spaces; one word must say the split (train, training / test, testing,
t10k) and one the kind (images, imgs, idx3, x / labels, lbls, idx1, y).
"""

from __future__ import annotations

import re

__all__ = ["PART_KEYS", "part_of"]

_SPLITS = {"train": "train", "training": "train", "test": "test", "testing": "test",
           "t10k": "test"}
_KINDS = {"images": "images", "image": "images", "imgs": "images", "img": "images",
          "idx3": "images", "x": "images", "labels": "labels", "label": "labels",
          "lbls": "labels", "lbl": "labels", "idx1": "labels", "y": "labels"}
PART_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def part_of(filename: str) -> str | None:
    """"train_images", "train_labels", "test_images" or "test_labels", or None when the name
    does not say exactly one split and one kind."""
    words = re.split(r"[-_.\s]+", filename.lower())
    splits = {_SPLITS[w] for w in words if w in _SPLITS}
    kinds = {_KINDS[w] for w in words if w in _KINDS}
    if len(splits) != 1 or len(kinds) != 1:
        return None
    return f"{splits.pop()}_{kinds.pop()}"
