"""vaelab.data.formats: every format reads known arrays back exactly; each refusal is one line.

Known arrays are written in each format (IDX part files gzipped and not, KMNIST-style .npz
parts, .npy parts, Keras's .npz, one-array .npz and .npy, folders of PNG files with and without
classes and splits) and read back through ``find_format`` and the format's reader, before any
test split is held out, so the comparison is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datafiles import (
    MNIST_NAMES,
    class_order,
    known_arrays,
    write_idx_parts,
    write_npz_parts,
    write_png_folder,
)
from vaelab.data.formats import RawParts, find_format, format_registry
from vaelab.data.part_names import part_of
from vaelab.errors import VaelabError


def _read(path: Path, expected_format: str, resize: bool = False) -> RawParts:
    fmt = find_format(path)
    assert fmt.name == expected_format
    return fmt.read(path, resize)


def _assert_parts(raw: RawParts, arrays: dict[str, np.ndarray], labelled: bool,
                  with_test: bool) -> None:
    np.testing.assert_array_equal(raw.train_images, arrays["train_images"])
    assert raw.train_images.dtype == np.uint8
    if labelled:
        assert raw.train_labels is not None and raw.train_labels.dtype == np.int64
        np.testing.assert_array_equal(raw.train_labels, arrays["train_labels"])
    else:
        assert raw.train_labels is None
    if with_test:
        assert raw.test_images is not None
        np.testing.assert_array_equal(raw.test_images, arrays["test_images"])
        if labelled:
            assert raw.test_labels is not None
            np.testing.assert_array_equal(raw.test_labels, arrays["test_labels"])
        else:
            assert raw.test_labels is None
    else:
        assert raw.test_images is None and raw.test_labels is None


def _subset(arrays: dict[str, np.ndarray], labelled: bool, with_test: bool
            ) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items()
            if (labelled or k.endswith("images")) and (with_test or k.startswith("train"))}


def test_every_format_is_registered() -> None:
    assert format_registry.names() == ["image-folder", "npy", "npz", "part-files"]


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "emnist-letters-train-images-idx3"
                                  "-ubyte", "kmnist-train-imgs.npz", "x_train.npy",
                                  "Training_Images.npy"])
def test_part_names_identify_train_images(name: str) -> None:
    assert part_of(name) == "train_images"


@pytest.mark.parametrize(("name", "part"), [("t10k-labels-idx1-ubyte.gz", "test_labels"),
                                            ("k49-test-labels.npz", "test_labels"),
                                            ("y_test.npy", "test_labels"),
                                            ("README.md", None), ("train-test-images", None),
                                            ("train.npy", None)])
def test_part_names(name: str, part: str | None) -> None:
    assert part_of(name) == part


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("with_test", [True, False])
def test_idx_part_files_round_trip(tmp_path: Path, compress: bool, labelled: bool,
                                   with_test: bool) -> None:
    arrays = known_arrays()
    folder = write_idx_parts(tmp_path / "set", _subset(arrays, labelled, with_test),
                             compress=compress)
    _assert_parts(_read(folder, "part-files"), arrays, labelled, with_test)


def test_emnist_folder_with_several_sets_is_narrowed_by_a_prefix(tmp_path: Path) -> None:
    letters, digits = known_arrays(seed=3), known_arrays(seed=5)
    folder = write_idx_parts(tmp_path / "gzip", letters, prefix="emnist-letters-")
    write_idx_parts(folder, digits, prefix="emnist-digits-")
    (folder / "emnist-letters-mapping.txt").write_text("1 65 97\n")
    with pytest.raises(VaelabError, match=r"several train images files.*--dataset .*emnist-"):
        _read(folder, "part-files")
    _assert_parts(_read(folder / "emnist-letters", "part-files"), letters, True, True)
    _assert_parts(_read(folder / "emnist-digits", "part-files"), digits, True, True)


@pytest.mark.parametrize("labelled", [True, False])
def test_kmnist_npz_part_files_round_trip(tmp_path: Path, labelled: bool) -> None:
    arrays = known_arrays()
    folder = write_npz_parts(tmp_path / "kmnist", _subset(arrays, labelled, True))
    _assert_parts(_read(folder, "part-files"), arrays, labelled, True)


def test_npy_part_files_round_trip_float_images(tmp_path: Path) -> None:
    arrays = known_arrays()
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "x_train.npy", arrays["train_images"].astype(np.float32) / 255)
    np.save(folder / "y_train.npy", arrays["train_labels"].astype(np.uint8))
    np.save(folder / "x_test.npy", arrays["test_images"].reshape(-1, 784))
    np.save(folder / "y_test.npy", arrays["test_labels"])
    _assert_parts(_read(folder, "part-files"), arrays, True, True)


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("with_test", [True, False])
def test_keras_npz_round_trip(tmp_path: Path, compressed: bool, labelled: bool,
                              with_test: bool) -> None:
    arrays = known_arrays()
    keys = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test",
            "test_labels": "y_test"}
    chosen = {keys[k]: v for k, v in _subset(arrays, labelled, with_test).items()}
    path = tmp_path / "mnist.npz"
    (np.savez_compressed if compressed else np.savez)(path, **chosen)
    _assert_parts(_read(path, "npz"), arrays, labelled, with_test)


def test_npz_class_names(tmp_path: Path) -> None:
    arrays = known_arrays()
    names = np.array([f"class {k}" for k in range(10)])
    np.savez(tmp_path / "named.npz", x_train=arrays["train_images"],
             y_train=arrays["train_labels"], class_names=names)
    assert _read(tmp_path / "named.npz", "npz").class_names == tuple(names)


def test_one_array_npz_and_npy_round_trip(tmp_path: Path) -> None:
    images = known_arrays()["train_images"]
    np.savez_compressed(tmp_path / "kmnist-train-imgs.npz", images)  # arr_0, as KMNIST ships
    np.save(tmp_path / "quickdraw_cat.npy", images.reshape(-1, 784))  # QuickDraw's bitmaps
    for path, fmt in ((tmp_path / "kmnist-train-imgs.npz", "npz"),
                      (tmp_path / "quickdraw_cat.npy", "npy")):
        _assert_parts(_read(path, fmt), {"train_images": images}, False, False)


@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("with_test", [True, False])
def test_png_folder_round_trip(tmp_path: Path, labelled: bool, with_test: bool) -> None:
    arrays = known_arrays()
    root = tmp_path / "pngs"
    expected = dict(arrays)
    for split in ("train", "test") if with_test else ("train",):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        folder = root / split if with_test else root
        write_png_folder(folder, images, labels if labelled else None)
        if labelled:  # listed class folder by class folder
            order = class_order(labels)
            expected[f"{split}_images"], expected[f"{split}_labels"] = images[order], labels[order]
    raw = _read(root, "image-folder")
    _assert_parts(raw, expected, labelled, with_test)
    assert raw.class_names == (tuple(str(k) for k in range(10)) if labelled else None)


def test_class_folders_give_sorted_class_names(tmp_path: Path) -> None:
    arrays = known_arrays()
    names = ["ankle boot", "bag", "coat", "dress", "pullover", "sandal", "shirt", "sneaker",
             "trouser", "t-shirt"]
    write_png_folder(tmp_path / "clothes", arrays["train_images"], arrays["train_labels"],
                     class_names=names)
    raw = _read(tmp_path / "clothes", "image-folder")
    assert raw.class_names == tuple(sorted(names))
    assert raw.train_labels is not None
    by_name = [raw.class_names[k] for k in raw.train_labels]
    order = np.argsort([names[k] for k in arrays["train_labels"]], kind="stable")
    assert by_name == [names[k] for k in arrays["train_labels"][order]]


def test_other_lossless_formats_and_bilevel_images_read_as_grey(tmp_path: Path) -> None:
    from PIL import Image

    images = known_arrays(n_train=6)["train_images"]
    write_png_folder(tmp_path / "bmp", images, suffix=".bmp")
    np.testing.assert_array_equal(_read(tmp_path / "bmp", "image-folder").train_images, images)
    folder = tmp_path / "bilevel"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image > 127).save(folder / f"{i}.png")  # mode "1"
    np.testing.assert_array_equal(_read(folder, "image-folder").train_images,
                                  (images > 127).astype(np.uint8) * 255)


def test_resize_off_refuses_and_names_the_flag_on_converts(tmp_path: Path) -> None:
    from PIL import Image

    images = known_arrays(n_train=4)["train_images"]
    folder = tmp_path / "colour"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(np.stack([image] * 3, axis=2)).save(folder / f"{i}.png")  # R = G = B
    Image.fromarray(np.full((56, 112), 200, np.uint8)).save(folder / "9-wide.png")
    with pytest.raises(VaelabError) as info:
        _read(folder, "image-folder")
    message = str(info.value)
    assert "0.png is a 28 x 28, RGB image" in message and "--resize" in message
    out = _read(folder, "image-folder", resize=True).train_images
    np.testing.assert_array_equal(out[:4], images)  # the luma of a grey colour is its grey
    wide = out[4]  # 112 x 56 fitted into 28 x 28: 14 rows of 200, centred on black
    assert (wide[:7] == 0).all() and (wide[21:] == 0).all()
    assert np.abs(wide[7:21].astype(int) - 200).max() <= 1


@pytest.mark.parametrize(("layout", "words"), [
    ({"a.png": "text", }, ["a.png is not an image file vaelab reads"]),
    ({"cat/": None, "dog/x.png": "image"}, ["class folder", "cat holds no image files"]),
    ({"x.png": "image", "cat/y.png": "image"}, ["both image files", "subfolders"]),
    ({"train/x.png": "image", "test/cat/y.png": "image"}, ["class folders but the others"]),
    ({"train/cat/x.png": "image", "test/dog/y.png": "image"}, ["class folder 'dog'"]),
    ({"test/x.png": "image"}, ["a test folder but no train"]),
    ({"big.png": "large"}, ["60 x 28, L", "expected 28 x 28 grey", "--resize"]),
])
def test_image_folder_refusals(tmp_path: Path, layout: dict[str, str | None],
                               words: list[str]) -> None:
    from PIL import Image

    root = tmp_path / "set"
    for name, what in layout.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if what is None:
            path.mkdir()
        elif what == "text":
            path.write_text("not an image\n")
        else:
            Image.fromarray(np.zeros((28, 60 if what == "large" else 28), np.uint8)).save(path)
    with pytest.raises(VaelabError) as info:
        find_format(root).read(root, False)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(("files", "words"), [
    ({"train-labels-idx1-ubyte": "labels"}, ["no train images file"]),
    ({"train-images-idx3-ubyte": "images", "t10k-labels-idx1-ubyte": "labels"},
     ["t10k-labels-idx1-ubyte but no test images file"]),
    ({"train-images-idx3-ubyte": "images", "train-labels-idx1-ubyte": "short"},
     ["holds 59 labels but", "holds 60 images"]),
    ({"train-images-idx3-ubyte": "labels"}, ["wrong magic number", "0x00000803"]),
])
def test_part_file_refusals(tmp_path: Path, files: dict[str, str], words: list[str]) -> None:
    from conftest import write_idx

    arrays = known_arrays()
    folder = tmp_path / "set"
    folder.mkdir()
    for name, what in files.items():
        array = {"images": arrays["train_images"], "labels": arrays["train_labels"],
                 "short": arrays["train_labels"][:-1]}[what]
        write_idx(folder / name, array.astype(np.uint8), compress=False)
    with pytest.raises(VaelabError) as info:
        find_format(folder).read(folder, False)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_npz_refusals(tmp_path: Path) -> None:
    arrays = known_arrays()
    cases = {
        "extra.npz": ({"x_train": arrays["train_images"], "z": arrays["train_labels"]},
                      "holds the arrays 'x_train', 'z'; expected x_train, y_train"),
        "labels.npz": ({"y_train": arrays["train_labels"], "x_test": arrays["test_images"]},
                       "expected x_train"),
        "k-train-labels.npz": ({"arr_0": arrays["train_labels"]}, "holds labels only"),
        "test-only.npz": ({"x_train": arrays["train_images"], "y_test": arrays["test_labels"]},
                          "holds y_test but no x_test"),
        "objects.npz": ({"x_train": np.array([{"a": 1}], dtype=object)},
                        "Python objects (a pickled object array); vaelab never unpickles"),
    }
    for name, (content, words) in cases.items():
        np.savez(tmp_path / name, **content)
        with pytest.raises(VaelabError) as info:
            find_format(tmp_path / name).read(tmp_path / name, False)
        assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_path_no_format_claims_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for path, word in ((tmp_path / "notes.txt", "a file vaelab cannot read"),
                       (tmp_path / "empty", "a folder vaelab cannot read")):
        with pytest.raises(VaelabError) as info:
            find_format(path)
        assert word in str(info.value) and ".npz" in str(info.value)


def test_mnist_names_cover_every_part() -> None:
    assert {part_of(name) for name in MNIST_NAMES.values()} == set(MNIST_NAMES)
