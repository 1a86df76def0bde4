"""An ``.npy`` file of images, (N, 28, 28) or (N, 784) (QuickDraw's bitmaps are (N, 784) uint8).

One array holds no labels and no test split; a test split is held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.data.checks import check_images
from vaelab.data.formats import DataFormat, RawParts, register_format
from vaelab.data.limits import MAX_FILE_BYTES
from vaelab.data.npy import read_npy
from vaelab.data.part_names import part_of
from vaelab.errors import VaelabError

__all__ = ["read_npy_file", "read_npy_path"]


def read_npy_path(path: Path) -> np.ndarray:
    """The array of an .npy file, its header checked against the file's size."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise VaelabError(f"{path} is larger than {MAX_FILE_BYTES >> 30} GiB; vaelab reads "
                              "smaller files")
        with path.open("rb") as stream:
            return read_npy(stream, str(path), size)
    except OSError as exc:
        raise VaelabError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_npy_file(path: Path, resize: bool) -> RawParts:
    if (part_of(path.name) or "").endswith("labels"):
        raise VaelabError(f"{path} holds labels only; pass the folder that holds it with the "
                          "image files (e.g. x_train.npy)")
    images = check_images(read_npy_path(path), str(path), resize)
    return RawParts(images, None, None, None, None, {"train_images": path.name})


register_format(DataFormat(
    name="npy",
    description="an .npy of images, (N, 28, 28) or (N, 784)",
    claims=lambda path: path.suffix.lower() == ".npy" and path.is_file(),
    read=read_npy_file,
))
