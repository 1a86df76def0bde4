"""An ``.npz`` file: Keras's ``mnist.npz`` keys, or one array of images (KMNIST's ``arr_0``).

Keys ``x_train`` (required), ``y_train``, ``x_test``, ``y_test``, and an optional
``class_names`` (a 1-D array of strings, one per label), as ``numpy.savez`` writes them from
keyword arguments; or exactly one array, the images, whatever its name (``numpy.savez(path,
images)`` calls it ``arr_0``). Without ``x_test`` a test split is held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.data.checks import check_images, check_labels
from vaelab.data.formats import DataFormat, RawParts, register_format
from vaelab.data.npy import NpzFile, open_npz
from vaelab.data.part_names import part_of
from vaelab.errors import VaelabError

__all__ = ["KERAS_KEYS", "read_npz", "single_array"]

KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
CLASS_NAMES = "class_names"


def single_array(npz: NpzFile) -> np.ndarray:
    """The one array of an .npz that holds one (KMNIST's per-part files)."""
    names = npz.names()
    if len(names) != 1:
        raise VaelabError(f"{npz.path} holds {len(names)} arrays "
                          f"({', '.join(map(repr, names[:6]))}); expected one")
    return npz.read(names[0])


def _class_names(npz: NpzFile) -> tuple[str, ...] | None:
    if CLASS_NAMES not in npz.names():
        return None
    names = npz.read(CLASS_NAMES)
    if names.dtype.kind != "U" or names.ndim != 1:
        raise VaelabError(f"{npz.path} (array 'class_names') holds {names.dtype} values of "
                          f"shape {names.shape}; expected a 1-D array of strings")
    return tuple(str(n) for n in names)


def read_npz(path: Path, resize: bool) -> RawParts:
    with open_npz(path) as npz:
        keys = set(npz.names())
        if "x_train" in keys and keys <= {*KERAS_KEYS, CLASS_NAMES}:
            return _read_keras(npz, resize)
        if len(keys) != 1:
            found = ", ".join(map(repr, sorted(keys)[:8]))
            raise VaelabError(f"{path} holds the arrays {found}; expected "
                              f"{', '.join(KERAS_KEYS)} (x_train required, class_names "
                              "optional) or one array of images")
        if (part_of(path.name) or "").endswith("labels"):
            raise VaelabError(f"{path} holds labels only; pass the folder that holds it with "
                              "the image files (e.g. kmnist-train-imgs.npz)")
        images = check_images(single_array(npz), f"{path} (array {keys.pop()!r})", resize)
        return RawParts(images, None, None, None, None, {"train_images": path.name})


def _read_keras(npz: NpzFile, resize: bool) -> RawParts:
    keys = set(npz.names())
    arrays: dict[str, np.ndarray | None] = {}
    for split in ("train", "test"):
        x, y = f"x_{split}", f"y_{split}"
        if y in keys and x not in keys:
            raise VaelabError(f"{npz.path} holds {y} but no {x}; expected the images with their "
                              "labels")
        source = f"{npz.path} (array {x!r})"
        images = check_images(npz.read(x), source, resize) if x in keys else None
        arrays[x] = images
        arrays[y] = None
        if images is not None and y in keys:
            arrays[y] = check_labels(npz.read(y), f"{npz.path} (array {y!r})", len(images),
                                     source)
    train_images = arrays["x_train"]
    assert train_images is not None  # the layout requires x_train
    files = {f"{s}_{k}": f"{npz.path.name}:{p}_{s}" for s in ("train", "test")
             for k, p in (("images", "x"), ("labels", "y")) if f"{p}_{s}" in keys}
    return RawParts(train_images, arrays["y_train"], arrays["x_test"], arrays["y_test"],
                    _class_names(npz), files)


register_format(DataFormat(
    name="npz",
    description="an .npz with x_train, y_train, x_test, y_test (as Keras's mnist.npz) or one "
                "array of images",
    claims=lambda path: path.suffix.lower() == ".npz" and path.is_file(),
    read=read_npz,
))
