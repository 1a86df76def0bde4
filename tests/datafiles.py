"""Known arrays written as a user's dataset in each format vaelab reads (shared by the tests of
the readers, the CLI on user data and the fuzzers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from conftest import make_digits, write_idx

MNIST_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def known_arrays(n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic digits (uint8 images, int64 labels from 0 to 9) for train and test."""
    train_x, train_y = make_digits(n_train, seed=seed)
    test_x, test_y = make_digits(n_test, seed=seed + 1)
    return {"train_images": train_x, "train_labels": train_y.astype(np.int64),
            "test_images": test_x, "test_labels": test_y.astype(np.int64)}


def write_idx_parts(folder: Path, arrays: dict[str, np.ndarray], prefix: str = "",
                    compress: bool = True, names: dict[str, str] | None = None) -> Path:
    """The arrays as IDX files named as MNIST ships them (after ``prefix``), gzipped or not."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, array in arrays.items():
        name = prefix + (names or MNIST_NAMES)[part] + (".gz" if compress else "")
        write_idx(folder / name, array.astype(np.uint8), compress=compress)
    return folder


def write_npz_parts(folder: Path, arrays: dict[str, np.ndarray], prefix: str = "kmnist") -> Path:
    """KMNIST's layout: <prefix>-train-imgs.npz, <prefix>-train-labels.npz, ... (arr_0 each)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = {"images": "imgs", "labels": "labels"}
    for part, array in arrays.items():
        split, kind = part.split("_")
        np.savez_compressed(folder / f"{prefix}-{split}-{words[kind]}.npz", array)
    return folder


def write_png_folder(folder: Path, images: np.ndarray, labels: np.ndarray | None = None,
                     class_names: Sequence[str] | None = None, suffix: str = ".png") -> Path:
    """One image file per image; in a subfolder per class (named by ``class_names``) when
    labelled. The files sort in the order of ``images`` within each class."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = class_names or [str(k) for k in range(10)]
    for i, image in enumerate(images):
        where = folder if labels is None else folder / names[int(labels[i])]
        where.mkdir(exist_ok=True)
        Image.fromarray(image).save(where / f"{i:05d}{suffix}")
    return folder


def class_order(labels: np.ndarray) -> np.ndarray:
    """The order an image folder lists labelled images in: by class folder, then by name."""
    return np.argsort(labels, kind="stable")
