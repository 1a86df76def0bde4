"""vaelab.data.user and read_dataset/load_splits on paths: checks, fingerprint, held-out split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from datafiles import known_arrays, write_png_folder
from vaelab.data import load_splits, read_dataset
from vaelab.data.splitting import TEST_SEED, hold_out_test, indices_sha256
from vaelab.errors import VaelabError


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_a_dataset_without_test_part_gets_one_held_out_and_recorded(tmp_path: Path) -> None:
    arrays = known_arrays(n_train=50)
    path = _npz(tmp_path / "set.npz", x_train=arrays["train_images"],
                y_train=arrays["train_labels"])
    content = read_dataset(path)
    train_idx, test_idx = hold_out_test(50)
    assert len(test_idx) == 5 and not set(train_idx) & set(test_idx)
    np.testing.assert_array_equal(content.test_images, arrays["train_images"][test_idx])
    np.testing.assert_array_equal(content.train_images, arrays["train_images"][train_idx])
    assert content.test_labels is not None and content.train_labels is not None
    np.testing.assert_array_equal(content.test_labels, arrays["train_labels"][test_idx])
    record = content.provenance["test_split"]
    assert record == {"held_out": True, "seed": TEST_SEED, "size": 5, "of": 50,
                      "indices_sha256": indices_sha256(test_idx)}
    assert content.test_held_out


def test_the_held_out_split_is_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    arrays = known_arrays(n_train=200)
    path = _npz(tmp_path / "set.npz", x_train=arrays["train_images"])
    code = ("import json, sys; from vaelab.data import read_dataset; "
            "print(json.dumps(read_dataset(sys.argv[1]).provenance['test_split']))")
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         check=True, env=env)
    assert json.loads(out.stdout) == read_dataset(path).provenance["test_split"]


def test_the_held_out_rule_does_not_drift() -> None:
    # Every run on a dataset without a test part relies on these very indices: a change to
    # the rule would silently move images between a recorded run's train and test splits.
    _, test_idx = hold_out_test(40)
    assert test_idx.tolist() == [6, 19, 38, 39]


def test_a_dataset_with_its_own_test_part_holds_nothing_out(tmp_path: Path) -> None:
    arrays = known_arrays()
    path = _npz(tmp_path / "set.npz", x_train=arrays["train_images"],
                x_test=arrays["test_images"])
    content = read_dataset(path)
    np.testing.assert_array_equal(content.test_images, arrays["test_images"])
    assert content.provenance["test_split"] == {"held_out": False}
    assert not content.labelled and content.class_names == ()


def test_unlabelled_splits_have_no_labels_anywhere(tmp_path: Path) -> None:
    write_png_folder(tmp_path / "scans", known_arrays(n_train=40)["train_images"])
    splits = load_splits(str(tmp_path / "scans"))
    assert not splits.labelled and splits.class_names == ()
    assert splits.train_labels is None and splits.val_labels is None
    assert splits.test_labels is None and splits.split("val")[1] is None
    assert (len(splits.train_images), len(splits.val_images), len(splits.test_images)) == \
        (33, 3, 4)
    assert splits.provenance["val_split"]["size"] == 3
    assert splits.name == str((tmp_path / "scans").absolute())


def test_content_id_follows_the_content_not_the_compression(tmp_path: Path) -> None:
    arrays = known_arrays()
    np.savez(tmp_path / "a.npz", x_train=arrays["train_images"])
    np.savez_compressed(tmp_path / "b.npz", x_train=arrays["train_images"])
    changed = arrays["train_images"].copy()
    changed[0, 0, 0] ^= 1
    np.savez(tmp_path / "c.npz", x_train=changed)
    a, b, c = (read_dataset(str(tmp_path / f"{n}.npz")) for n in "abc")
    assert a.provenance["sha256"] == b.provenance["sha256"] != c.provenance["sha256"]
    assert a.content_id == f"a-{a.provenance['sha256'][:12]}"
    assert a.content_id.split("-")[1] == b.content_id.split("-")[1] != c.content_id.split("-")[1]


def test_classes_are_numbered_from_the_labels(tmp_path: Path) -> None:
    arrays = known_arrays()
    labels = arrays["train_labels"] % 3
    path = _npz(tmp_path / "three.npz", x_train=arrays["train_images"], y_train=labels,
                x_test=arrays["test_images"], y_test=arrays["test_labels"] % 3)
    assert read_dataset(path).class_names == ("0", "1", "2")


@pytest.mark.parametrize(("arrays", "words"), [
    ({"x_train": "images", "y_train": "labels", "x_test": "test"},
     "labels for the train images only"),
    ({"x_train": "images", "x_test": "test", "y_test": "test_labels"},
     "labels for the test images only"),
    ({"x_train": "one"}, "holds 1 image; expected at least 2"),
    ({"x_train": "images", "y_train": "labels", "class_names": "two_names"},
     "names 2 classes but the labels go up to 9"),
])
def test_parts_must_agree(tmp_path: Path, arrays: dict[str, str], words: str) -> None:
    known = known_arrays()
    values = {"images": known["train_images"], "labels": known["train_labels"],
              "test": known["test_images"], "test_labels": known["test_labels"],
              "one": known["train_images"][:1], "two_names": np.array(["a", "b"])}
    path = _npz(tmp_path / "bad.npz", **{k: values[v] for k, v in arrays.items()})
    with pytest.raises(VaelabError) as info:
        read_dataset(path)
    assert words in str(info.value) and path in str(info.value)


def test_registered_names_win_and_keep_their_cache_names(tmp_path: Path) -> None:
    splits = load_splits("mnist-sample", tmp_path)
    assert splits.content_id == "mnist-sample" and splits.labelled
    assert splits.provenance["format"] == "registered"
    assert splits.provenance["files"]["train_images"] == "train-images-idx3-ubyte.gz"
    assert splits.class_noun == "digit" and not splits.test_held_out


def test_an_unknown_value_is_neither_name_nor_path(tmp_path: Path) -> None:
    with pytest.raises(VaelabError) as info:
        read_dataset(str(tmp_path / "nothing-here.npz"))
    message = str(info.value)
    assert "unknown dataset" in message and "mnist-sample" in message
    assert "nor an existing file or folder" in message
