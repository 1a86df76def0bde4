"""A folder of part files: train and test images and labels, each in a file of its own.

Each file's part is read from its name (``vaelab.data.part_names``): MNIST's, EMNIST's and
KMNIST's IDX files (gzipped or not), KMNIST's and K-49's ``*-train-imgs.npz`` (one array
each), or ``x_train.npy``-style arrays. Only the train images are required; without labels the
data is unlabelled, without test files a test split is held out. A folder holding several
datasets (EMNIST's holds six) is narrowed with a prefix: ``--dataset DIR/emnist-letters``
reads the files of DIR whose names start with ``emnist-letters``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vaelab.data.checks import check_images, check_labels
from vaelab.data.formats import DataFormat, RawParts, register_format
from vaelab.data.formats.npy_file import read_npy_path
from vaelab.data.formats.npz_file import single_array
from vaelab.data.idx import read_idx
from vaelab.data.npy import open_npz
from vaelab.data.part_names import PART_KEYS, part_of
from vaelab.errors import VaelabError

__all__ = ["part_files"]

_FIX = "the file is damaged; copy or download it again"
_MAX_LISTED = 100_000  # entries looked at in one folder


def _read_idx_part(path: Path, kind: str) -> np.ndarray:
    return read_idx(path, rank=3 if kind == "images" else 1, fix=_FIX)


def _read_npz_part(path: Path, kind: str) -> np.ndarray:
    with open_npz(path) as npz:
        return single_array(npz)


def _read_npy_part(path: Path, kind: str) -> np.ndarray:
    return read_npy_path(path)


def _reader(name: str) -> Callable[[Path, str], np.ndarray] | None:
    """How a part file is read, from its suffix; None for a file that is no part file."""
    lower = name.lower().removesuffix(".gz")
    suffix_readers = {".npz": _read_npz_part, ".npy": _read_npy_part}
    for suffix, reader in suffix_readers.items():
        if lower.endswith(suffix) and not name.lower().endswith(".gz"):
            return reader
    if lower.endswith(("ubyte", ".idx")):
        return _read_idx_part
    return None


def _scope(path: Path) -> tuple[Path, str]:
    """The folder to look in and the prefix names must start with ("" for a whole folder)."""
    if path.is_dir():
        return path, ""
    return path.parent, path.name


def part_files(path: Path) -> dict[str, list[Path]]:
    """The part files of a folder (or of a prefix within one), by part."""
    folder, prefix = _scope(path)
    found: dict[str, list[Path]] = {}
    try:
        entries = sorted(folder.iterdir())[:_MAX_LISTED] if folder.is_dir() else []
    except OSError:
        return {}
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.name.startswith("."):
            continue
        part = part_of(entry.name)
        if part is not None and _reader(entry.name) is not None and entry.is_file():
            found.setdefault(part, []).append(entry)
    return found


def _set_name(filename: str) -> str:
    """The start of a part file's name before its split word: the dataset's own name."""
    lower = filename.lower()
    at = min((i for i in (lower.find(w) for w in ("train", "test", "t10k")) if i >= 0),
             default=len(filename))
    return filename[:at].rstrip("-_. ") or filename


def _claims(path: Path) -> bool:
    if not path.is_dir() and (path.exists() or not path.parent.is_dir() or not path.name):
        return False
    return bool(part_files(path))


def read_part_files(path: Path, resize: bool) -> RawParts:
    found = part_files(path)
    for part in PART_KEYS:
        paths = found.get(part, [])
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths[:4])
            raise VaelabError(f"{path} holds several {part.replace('_', ' ')} files ({names}); "
                              "name one dataset by the start of its file names, e.g. "
                              f"--dataset {paths[-1].parent / _set_name(paths[-1].name)}")
    if "train_images" not in found:
        have = ", ".join(p.name for paths in found.values() for p in paths)
        raise VaelabError(f"{path} holds no train images file (found {have}); expected one "
                          "named like train-images-idx3-ubyte.gz, kmnist-train-imgs.npz or "
                          "x_train.npy")
    arrays: dict[str, np.ndarray | None] = dict.fromkeys(PART_KEYS)
    files: dict[str, str] = {}
    for split in ("train", "test"):
        images_file = found.get(f"{split}_images", [None])[0]
        labels_file = found.get(f"{split}_labels", [None])[0]
        if labels_file is not None and images_file is None:
            raise VaelabError(f"{path} holds {labels_file.name} but no {split} images file; "
                              "expected the images with their labels")
        if images_file is None:
            continue
        read = _reader(images_file.name)
        assert read is not None  # part_files keeps readable files only
        images = check_images(read(images_file, "images"), str(images_file), resize)
        arrays[f"{split}_images"] = images
        files[f"{split}_images"] = images_file.name
        if labels_file is not None:
            read = _reader(labels_file.name)
            assert read is not None
            arrays[f"{split}_labels"] = check_labels(read(labels_file, "labels"),
                                                     str(labels_file), len(images),
                                                     str(images_file))
            files[f"{split}_labels"] = labels_file.name
    train_images = arrays["train_images"]
    assert train_images is not None
    return RawParts(train_images, arrays["train_labels"], arrays["test_images"],
                    arrays["test_labels"], None, files)


register_format(DataFormat(
    name="part-files",
    description="a folder of train/test image and label files (IDX, gzipped or not, as MNIST, "
                "EMNIST and KMNIST ship; or one .npz or .npy array each)",
    claims=_claims,
    read=read_part_files,
))
