"""Datasets by name or by path, and their train/val/test splits.

A registered dataset is four IDX files. They are looked for, in order, in ``--data-dir`` (or
``$VAELAB_DATA``, else ``~/.cache/vaelab``) under ``<root>/<name>/``, in
``/usr/share/datasets/<name>/`` (Debian's dataset packages), and for ``mnist-sample`` in the
copy shipped inside the package. Any other ``dataset`` value is a path, read by
``vaelab.data.user`` in one of the formats of ``vaelab.data.formats``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data.content import DatasetContent, content_sha256
from vaelab.data.idx import decompressed_bytes, read_idx_bytes, sha256_hex
from vaelab.data.splitting import VAL_SEED, default_val_size, indices_sha256, val_split
from vaelab.errors import VaelabError
from vaelab.registry import Registry

__all__ = [
    "FILE_KINDS",
    "DatasetContent",
    "DatasetSpec",
    "Splits",
    "dataset_registry",
    "default_data_root",
    "default_val_size",
    "display_name",
    "find_dataset",
    "is_registered",
    "load_arrays",
    "load_splits",
    "read_dataset",
    "search_dirs",
]

FILE_KINDS = ("train_images", "train_labels", "test_images", "test_labels")
_FILENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_PACKAGE_DATA = Path(__file__).parent


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of four IDX files."""

    name: str  # registry name, also the folder name under the data root
    description: str  # one line for `vaelab data list`
    sha256: dict[str, str]  # file kind -> SHA-256 of the decompressed content
    mirrors: tuple[str, ...] = ()  # base URLs tried in order by `vaelab data download`
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))  # label -> readable name
    class_noun: str = "class"  # what one class is called in prose: "digit" for MNIST
    shipped: bool = False  # a copy lives inside the package
    licence: str = ""  # credit shown by `vaelab data list`

    def filename(self, kind: str) -> str:
        return _FILENAMES[kind]


dataset_registry: Registry[DatasetSpec] = Registry("dataset")

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_MNIST_LICENCE = "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0"

dataset_registry.add(
    "mnist",
    DatasetSpec(
        name="mnist",
        description="MNIST handwritten digits, 60,000 train / 10,000 test",
        sha256={
            "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=_MNIST_MIRRORS,
        class_noun="digit",
        licence=_MNIST_LICENCE,
    ),
)
dataset_registry.add(
    "mnist-sample",
    DatasetSpec(
        name="mnist-sample",
        description="first 10,000 train / 2,000 test MNIST digits, shipped with vaelab",
        sha256={
            "train_images": "2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1",
            "train_labels": "651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78",
            "test_images": "3f6bd66dee48df299584c67669bceee490faa25f931496bd7473b42106d7daed",
            "test_labels": "7b098e5f6a3065807cebeabf36fb1724a8aff19f2673ac08b4923e0e8c715bce",
        },
        shipped=True,
        class_noun="digit",
        licence=_MNIST_LICENCE,
    ),
)
dataset_registry.add(
    "fashion-mnist",
    DatasetSpec(
        name="fashion-mnist",
        description="Fashion-MNIST (Zalando), 60,000 train / 10,000 test clothing images",
        sha256={
            "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        class_names=(
            "T-shirt",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        licence="Fashion-MNIST by Zalando Research, MIT licence",
    ),
)


def default_data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``--data-dir``, else ``$VAELAB_DATA``, else ``~/.cache/vaelab``."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("VAELAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "vaelab"


def search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders looked in for a dataset's files, in order."""
    dirs = [default_data_root(data_dir) / spec.name, Path("/usr/share/datasets") / spec.name]
    if spec.shipped:
        dirs.append(_PACKAGE_DATA / spec.name)
    return dirs


def _file_in(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / f"{filename}.gz", folder / filename):
        if candidate.is_file():
            return candidate
    return None


def find_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Paths of the four files of ``name``, all from the first folder that has every one."""
    spec = dataset_registry.get(name)
    dirs = search_dirs(spec, data_dir)
    for folder in dirs:
        found = {kind: _file_in(folder, spec.filename(kind)) for kind in FILE_KINDS}
        if all(found.values()):
            return {kind: path for kind, path in found.items() if path is not None}
    partial = next(
        (folder for folder in dirs if any(_file_in(folder, spec.filename(k)) for k in FILE_KINDS)),
        None,
    )
    looked = ", ".join(str(d) for d in dirs)
    if partial is not None:
        missing = [
            spec.filename(k) for k in FILE_KINDS if _file_in(partial, spec.filename(k)) is None
        ]
        what = f"{', '.join(missing)} missing from {partial}"
    else:
        what = f"no files found (looked in {looked})"
    raise VaelabError(
        f"dataset {name!r}: {what}; run `vaelab data download {name}` when online, "
        "or pass --data-dir DIR (or set VAELAB_DATA) to a folder holding "
        f"{name}/{spec.filename('train_images')}.gz and the other three files"
    )


def _registered_content(name: str, data_dir: str | os.PathLike[str] | None,
                        verify: bool) -> DatasetContent:
    """A registered dataset's four IDX files, each checked against its known SHA-256."""
    spec = dataset_registry.get(name)
    paths = find_dataset(name, data_dir)
    arrays: dict[str, np.ndarray] = {}
    for kind, path in paths.items():
        content = decompressed_bytes(path)
        if verify and sha256_hex(content) != spec.sha256[kind]:
            raise VaelabError(
                f"{path} fails its checksum (content differs from the published {spec.name}); "
                f"delete it and run `vaelab data download {spec.name}`"
            )
        is_images = kind.endswith("images")
        arrays[kind] = read_idx_bytes(
            content, str(path), rank=3 if is_images else 1, item_shape=(28, 28) if is_images else ()
        )
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise VaelabError(f"{name}: {n_img} {split} images but {n_lab} labels")
    # The files are the published ones, so their checksums fingerprint the content.
    parts = {split: sha256_hex((spec.sha256[f"{split}_images"]
                                + spec.sha256[f"{split}_labels"]).encode())
             for split in ("train", "test")}
    provenance = {
        "dataset": name, "format": "registered", "sha256": content_sha256(parts,
                                                                          spec.class_names),
        "parts": parts, "files": {kind: paths[kind].name for kind in FILE_KINDS},
        "images": {split: len(arrays[f"{split}_images"]) for split in ("train", "test")},
        "labelled": True, "class_names": list(spec.class_names), "resize": False,
        "test_split": {"held_out": False},
    }
    return DatasetContent(
        name=name, train_images=arrays["train_images"], train_labels=arrays["train_labels"],
        test_images=arrays["test_images"], test_labels=arrays["test_labels"],
        class_names=spec.class_names, class_noun=spec.class_noun, content_id=name,
        provenance=provenance)


def is_registered(dataset: str) -> bool:
    """Whether ``dataset`` names a registered dataset (else it is a path)."""
    return dataset in dataset_registry


def display_name(dataset: str) -> str:
    """A short name for titles: a registered name, or the last part of a path."""
    return dataset if is_registered(dataset) else Path(dataset).name or dataset


def read_dataset(dataset: str, data_dir: str | os.PathLike[str] | None = None,
                 verify: bool = True, resize: bool = False) -> DatasetContent:
    """The train and test parts of a registered dataset or of a path, every file checked.

    A registered name wins over a file or folder of the same name (write ``./mnist`` for the
    folder). ``data_dir`` is where registered datasets are looked for; ``resize`` converts a
    path's images that are not 28 x 28 grey.
    """
    if is_registered(dataset):
        return _registered_content(dataset, data_dir, verify)
    from vaelab.data.user import dataset_path, read_path_dataset

    return read_path_dataset(dataset_path(dataset, dataset_registry.names()), resize)


def load_arrays(
    name: str, data_dir: str | os.PathLike[str] | None = None, verify: bool = True,
    resize: bool = False,
) -> dict[str, np.ndarray]:
    """The four arrays of a dataset (the label arrays only when it is labelled)."""
    content = read_dataset(name, data_dir, verify, resize)
    arrays = {"train_images": content.train_images, "train_labels": content.train_labels,
              "test_images": content.test_images, "test_labels": content.test_labels}
    return {kind: array for kind, array in arrays.items() if array is not None}


@dataclass
class Splits:
    """uint8 images (N, 28, 28) and int labels (N,) for train, validation and test.

    Unlabelled data has every label array None and no class names.
    """

    name: str  # a registered name, or the dataset's absolute path
    train_images: np.ndarray
    train_labels: np.ndarray | None
    val_images: np.ndarray
    val_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray | None
    class_names: tuple[str, ...] = field(default_factory=tuple)
    class_noun: str = "class"  # what one class is called in prose: "digit" for MNIST
    # A name for caches of things learnt from this data (the digit classifier): the registered
    # name, or "<name>-<first 12 hex digits of the content's SHA-256>" for a path.
    content_id: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)  # the run's "data" section

    def __post_init__(self) -> None:
        labels = (self.train_labels, self.val_labels, self.test_labels)
        if any(a is None for a in labels) != all(a is None for a in labels):
            raise ValueError("either every split has labels or none has")
        if not self.content_id:
            self.content_id = self.name

    @property
    def labelled(self) -> bool:
        """Whether the images carry labels (the classifier-based measures need them)."""
        return self.train_labels is not None

    @property
    def test_held_out(self) -> bool:
        """Whether the test split was held out of data that came without one."""
        return bool(self.provenance.get("test_split", {}).get("held_out"))

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray | None]:
        if which not in ("train", "val", "test"):
            raise VaelabError(f"unknown split {which!r}; choose train, val or test")
        return getattr(self, f"{which}_images"), getattr(self, f"{which}_labels")


def load_splits(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    val_size: int | None = None,
    resize: bool = False,
) -> Splits:
    """Train/validation/test splits; the validation images are carved from the training set.

    ``name`` is a registered dataset or a path (see ``read_dataset``).
    """
    content = read_dataset(name, data_dir, resize=resize)
    n_train = len(content.train_images)
    size = default_val_size(n_train) if val_size is None else val_size
    if not 0 <= size < n_train:
        raise VaelabError(f"--val-size must be between 0 and {n_train - 1}, got {size}")
    train_idx, val_idx = val_split(n_train, size)
    labels = content.train_labels
    provenance = {**content.provenance,
                  "val_split": {"seed": VAL_SEED, "size": size, "of": n_train,
                                "indices_sha256": indices_sha256(val_idx)}}
    return Splits(
        name=content.name,
        train_images=content.train_images[train_idx],
        train_labels=None if labels is None else labels[train_idx],
        val_images=content.train_images[val_idx],
        val_labels=None if labels is None else labels[val_idx],
        test_images=content.test_images,
        test_labels=content.test_labels,
        class_names=content.class_names,
        class_noun=content.class_noun,
        content_id=content.content_id,
        provenance=provenance,
    )
