"""`vaelab data check NAME_OR_PATH`: what a dataset holds, or one line saying what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datafiles import known_arrays, write_idx_parts, write_png_folder
from vaelab.cli.main import main


def test_check_describes_a_labelled_folder_of_idx_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_idx_parts(tmp_path / "emnist", known_arrays(n_train=100, n_test=30),
                             prefix="emnist-letters-")
    assert main(["data", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"{folder}: part-files, labelled" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[3:6]}
    assert rows == {"train": "90", "validation": "10", "test": "30"}
    assert "emnist-letters-t10k-images-idx3-ubyte.gz" in out
    assert "10 classes: 0 (" in out and "content SHA-256: " in out


def test_check_of_unlabelled_images_says_what_works_without_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_png_folder(tmp_path / "scans", known_arrays(n_train=50)["train_images"])
    assert main(["data", "check", str(folder), "--val-size", "0"]) == 0
    out = capsys.readouterr().out
    assert "image-folder, unlabelled" in out and "held out of the 50 images read" in out
    assert "the classifier-based measures" in out


def test_check_json_is_the_provenance_a_run_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "set.npz"
    np.savez(path, x_train=known_arrays(n_train=40)["train_images"])
    assert main(["data", "check", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["format"] == "npz" and record["dataset"] == str(path)
    assert record["test_split"]["held_out"] and record["val_split"]["size"] == 3
    assert main(["train", "--dataset", str(path), "--epochs", "1", "--z-dim", "2", "--out",
                 str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "provenance.json").read_text())["data"]
    assert saved == record


def test_check_resize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "big.npy", np.zeros((4, 64, 64), np.uint8))
    assert main(["data", "check", str(tmp_path / "big.npy")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "(4, 64, 64)" in err and "--resize" in err
    assert main(["data", "check", str(tmp_path / "big.npy"), "--resize"]) == 0


def test_check_of_a_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "mnist-sample"]) == 0
    out = capsys.readouterr().out
    assert "mnist-sample: registered, labelled" in out and "t10k-images-idx3-ubyte.gz" in out
