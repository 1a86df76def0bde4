"""A dataset given as a path: read through its format, checked, fingerprinted, split.

``read_path_dataset`` finds the one format that claims the path (``vaelab.data.formats``),
reads it into checked arrays, checks that the parts agree (labels for both splits or for
neither, a name for every class), records the SHA-256 of the content, and holds out a test
split when the data has none (``vaelab.data.splitting``). Everything a run directory records
about the data is in the returned ``provenance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vaelab.data.checks import check_class_names
from vaelab.data.content import DatasetContent, content_sha256, part_sha256
from vaelab.data.formats import RawParts, find_format
from vaelab.data.formats.part_files import part_files
from vaelab.data.splitting import TEST_SEED, hold_out_test, indices_sha256
from vaelab.errors import VaelabError

__all__ = ["dataset_path", "read_path_dataset"]


def dataset_path(value: str, registered: Sequence[str]) -> Path:
    """The absolute path a ``dataset`` value names; a one-line error when nothing is there."""
    path = Path(value).expanduser()
    if path.exists() or (not path.is_dir() and path.parent.is_dir() and part_files(path)):
        return path.absolute()
    raise VaelabError(f"unknown dataset {value!r}: it is neither one of the registered "
                      f"datasets ({', '.join(registered)}) nor an existing file or folder")


def _check_parts(path: Path, raw: RawParts) -> tuple[str, ...]:
    """The class names, after checking that the parts agree about labels."""
    if raw.test_images is not None and (raw.train_labels is None) != (raw.test_labels is None):
        which = "train" if raw.test_labels is None else "test"
        raise VaelabError(f"{path} has labels for the {which} images only; expected labels for "
                          "both splits, or for neither")
    if raw.train_labels is None:
        return ()
    largest = max(int(labels.max()) for labels in (raw.train_labels, raw.test_labels)
                  if labels is not None and len(labels))
    if raw.class_names is None:
        return tuple(str(label) for label in range(largest + 1))
    return check_class_names(raw.class_names, largest, str(path))


def _name(path: Path) -> str:
    """The dataset's own name: the file's name without its suffix, or the folder's."""
    name = path.name
    for suffix in (".gz", ".npz", ".npy"):
        name = name.removesuffix(suffix)
    return name or "data"


def read_path_dataset(path: Path, resize: bool = False) -> DatasetContent:
    """Read, check and split the dataset at ``path`` (from ``dataset_path``)."""
    fmt = find_format(path)
    raw = fmt.read(path, resize)
    class_names = _check_parts(path, raw)
    parts = {"train": part_sha256(raw.train_images, raw.train_labels),
             "test": None if raw.test_images is None
             else part_sha256(raw.test_images, raw.test_labels)}
    sha256 = content_sha256(parts, class_names)
    train_images, train_labels = raw.train_images, raw.train_labels
    n_read = {"train": len(train_images)}
    if raw.test_images is None:
        n = len(train_images)
        if n < 2:
            raise VaelabError(f"{path} holds {n} image; expected at least 2, one to train on "
                              "and one held out for testing")
        train_idx, test_idx = hold_out_test(n)
        test_images, train_images = train_images[test_idx], train_images[train_idx]
        if train_labels is not None:
            test_labels, train_labels = train_labels[test_idx], train_labels[train_idx]
        else:
            test_labels = None
        test_split = {"held_out": True, "seed": TEST_SEED, "size": len(test_idx), "of": n,
                      "indices_sha256": indices_sha256(test_idx)}
    else:
        test_images, test_labels = raw.test_images, raw.test_labels
        n_read["test"] = len(test_images)
        test_split = {"held_out": False}
    provenance = {
        "dataset": str(path), "format": fmt.name, "sha256": sha256, "parts": parts,
        "files": raw.files, "images": n_read, "labelled": train_labels is not None,
        "class_names": list(class_names), "resize": resize, "test_split": test_split,
    }
    return DatasetContent(
        name=str(path), train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels, class_names=class_names,
        class_noun="class", content_id=f"{_name(path)}-{sha256[:12]}", provenance=provenance)

