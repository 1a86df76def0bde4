"""The file formats a dataset given as a path may take, created through a registry.

Each format is one module that registers a ``DataFormat``: whether it claims a path, and how
it reads one into checked arrays (``RawParts``). ``find_format`` asks every format; exactly
one must claim the path. The readers never trust a file (see ``vaelab.data.limits``) and
import their heavy libraries (Pillow) only when they read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.errors import VaelabError
from vaelab.registry import Registry

__all__ = ["DataFormat", "RawParts", "find_format", "format_registry", "register_format"]


@dataclass
class RawParts:
    """What one format read: checked uint8 images (N, 28, 28) and int64 labels per part."""

    train_images: np.ndarray
    train_labels: np.ndarray | None
    test_images: np.ndarray | None  # None: the data has no test part, one is held out
    test_labels: np.ndarray | None
    class_names: tuple[str, ...] | None  # None: the classes are numbered from the labels
    files: dict[str, str] = field(default_factory=dict)  # part -> the file it came from


@dataclass(frozen=True)
class DataFormat:
    """One way a dataset can lie on disk."""

    name: str  # a short name, recorded in provenance.json
    description: str  # one line for the docs and `vaelab data check`
    claims: Callable[[Path], bool]  # whether a path has this format (cheap: names, no reading)
    read: Callable[[Path, bool], RawParts]  # (path, resize) -> checked arrays


format_registry: Registry[DataFormat] = Registry("data format")


def register_format(fmt: DataFormat) -> DataFormat:
    return format_registry.add(fmt.name, fmt)


def find_format(path: Path) -> DataFormat:
    """The one format that claims ``path``; a one-line error when none or several do."""
    claimed = [format_registry.get(name) for name in format_registry
               if format_registry.get(name).claims(path)]
    if len(claimed) == 1:
        return claimed[0]
    if claimed:
        kinds = " or as ".join(f.description for f in claimed)
        raise VaelabError(f"{path} could be read as {kinds}; keep one kind of dataset in a "
                          "folder")
    what = "folder" if path.is_dir() else "file"
    kinds = "; ".join(format_registry.get(name).description for name in format_registry)
    raise VaelabError(f"{path} is a {what} vaelab cannot read as a dataset; expected {kinds}")


# Importing each format module registers its format.
from vaelab.data.formats import image_folder, npy_file, npz_file, part_files  # noqa: E402, F401  isort: skip
