"""The split rules: the held-out test split and the validation split, each with its own seed.

* A dataset without a test part gets one held out: ``held_out_size(n)`` images (10 %, at most
  10,000, at least one), chosen by ``held_out_order``, a permutation that depends on the seed
  and ``n`` only. It is computed with its own integer hash (SplitMix64), not NumPy's
  generators, so the same data gives the same test images with any NumPy version.
* The validation split (5,000 images, or 10 % of a smaller training set) is carved from what
  remains for training, with its own fixed seed, as for the registered datasets.

Both seeds are independent of the training seed, so every run on the same data holds out the
same images and its scores are comparable across runs.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["TEST_SEED", "VAL_SEED", "default_val_size", "held_out_order", "held_out_size",
           "hold_out_test", "indices_sha256", "val_split"]

VAL_SEED = 20150807
TEST_SEED = 20240521
_MAX_TEST = 10_000


def default_val_size(n_train: int) -> int:
    """5,000 images, or 10 % of the training set when that is smaller."""
    return min(5000, n_train // 10)


def held_out_size(n: int) -> int:
    """Images held out for testing from ``n`` (at least 2): 10 %, from 1 to 10,000."""
    return max(1, min(_MAX_TEST, n // 10))


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood 2014) on uint64 values."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def held_out_order(n: int, seed: int = TEST_SEED) -> np.ndarray:
    """A permutation of range(n) fixed by ``seed``: indices sorted by their hash."""
    keys = _splitmix64(np.arange(n, dtype=np.uint64) ^ _splitmix64(np.array([seed], np.uint64)))
    return np.argsort(keys, kind="stable")


def hold_out_test(n: int, seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices of ``n`` images, ``held_out_size(n)`` of them held out."""
    order = held_out_order(n, seed)
    size = held_out_size(n)
    return np.sort(order[size:]), np.sort(order[:size])


def val_split(n_train: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices: ``size`` validation images carved with VAL_SEED."""
    order = np.random.default_rng(VAL_SEED).permutation(n_train)
    return np.sort(order[size:]), np.sort(order[:size])


def indices_sha256(indices: np.ndarray) -> str:
    """SHA-256 of indices as little-endian int64, to record a split without listing it."""
    return hashlib.sha256(np.asarray(indices, "<i8").tobytes()).hexdigest()
