from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from vaelab.data import load_splits
from vaelab.data.datasets import find_dataset, load_arrays
from vaelab.errors import VaelabError

SAMPLE_COUNTS = {
    "train": [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978],
    "test": [175, 234, 219, 207, 217, 179, 178, 205, 192, 194],
}
FULL_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


def test_shipped_sample_matches_published_checksums_and_counts(tmp_path: Path) -> None:
    arrays = load_arrays("mnist-sample", data_dir=tmp_path)  # empty root: falls back to the package
    assert arrays["train_images"].shape == (10000, 28, 28)
    assert arrays["test_images"].shape == (2000, 28, 28)
    for split, counts in SAMPLE_COUNTS.items():
        assert np.bincount(arrays[f"{split}_labels"], minlength=10).tolist() == counts


def test_full_mnist_checksums_and_counts(real_mnist: str) -> None:
    arrays = load_arrays("mnist", data_dir=real_mnist)
    assert arrays["train_images"].shape == (60000, 28, 28)
    for split, counts in FULL_COUNTS.items():
        assert np.bincount(arrays[f"{split}_labels"], minlength=10).tolist() == counts


def test_sample_is_prefix_of_full(real_mnist: str, tmp_path: Path) -> None:
    full = load_arrays("mnist", data_dir=real_mnist)
    sample = load_arrays("mnist-sample", data_dir=tmp_path)
    np.testing.assert_array_equal(full["train_images"][:10000], sample["train_images"])


def test_validation_split_is_fixed_and_disjoint(tmp_path: Path) -> None:
    a = load_splits("mnist-sample", tmp_path)
    b = load_splits("mnist-sample", tmp_path)
    assert len(a.val_images) == 1000 and len(a.train_images) == 9000
    np.testing.assert_array_equal(a.val_images, b.val_images)
    # Every image by hash: the 9,000 and the 1,000 share none, and together they are the
    # 10,000 training images of the file (which holds no two equal images).
    source = load_arrays("mnist-sample", data_dir=tmp_path)["train_images"]
    train = {hashlib.sha256(img.tobytes()).digest() for img in a.train_images}
    val = {hashlib.sha256(img.tobytes()).digest() for img in a.val_images}
    assert (len(train), len(val)) == (9000, 1000)
    assert not train & val
    assert train | val == {hashlib.sha256(img.tobytes()).digest() for img in source}
    assert len(a.test_images) == 2000


def test_val_size_bounds(tmp_path: Path) -> None:
    assert len(load_splits("mnist-sample", tmp_path, val_size=0).val_images) == 0
    with pytest.raises(VaelabError, match="--val-size"):
        load_splits("mnist-sample", tmp_path, val_size=10000)


def test_missing_dataset_message_names_files_places_and_fix(tmp_path: Path) -> None:
    with pytest.raises(VaelabError) as info:
        find_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist") in message
    assert "vaelab data download mnist" in message and "--data-dir" in message
    assert "\n" not in message


def test_partial_dataset_names_missing_files(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    with pytest.raises(VaelabError, match="t10k-labels-idx1-ubyte"):
        find_dataset("mnist", data_dir=tmp_path)


def test_corrupt_file_fails_checksum(tmp_path: Path) -> None:
    import gzip
    import shutil

    from vaelab.data import datasets

    folder = tmp_path / "mnist-sample"
    shutil.copytree(datasets._PACKAGE_DATA / "mnist-sample", folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[-1] = (data[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(VaelabError, match="checksum"):
        load_arrays("mnist-sample", data_dir=tmp_path)


def test_unknown_dataset() -> None:
    with pytest.raises(VaelabError, match=r"unknown dataset 'nope'.*mnist"):
        load_splits("nope")


def test_fashion_mnist_from_debian_package() -> None:
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    arrays = load_arrays("fashion-mnist", data_dir="/nonexistent")
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert np.bincount(arrays["test_labels"]).tolist() == [1000] * 10
