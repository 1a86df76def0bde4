"""Runs on a user's dataset, through the CLI in-process: unlabelled data end to end, bad files
refused before anything is written, conditional models, and data that changed or moved.

(The same flow in fresh processes, for a folder of PNGs and an .npz, is the walkthrough in
docs/your-own.md, run by tests/test_docs_own_images.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datafiles import known_arrays, write_idx_parts, write_png_folder
from vaelab.cli.main import main

FAST = ["--epochs", "1", "--batch-size", "32", "--z-dim", "2", "--device", "cpu"]


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def _npz(path: Path, labelled: bool = True, with_test: bool = False, n: int = 120) -> Path:
    arrays = known_arrays(n_train=n, n_test=40)
    content = {"x_train": arrays["train_images"]}
    if labelled:
        content["y_train"] = arrays["train_labels"]
    if with_test:
        content["x_test"] = arrays["test_images"]
        if labelled:
            content["y_test"] = arrays["test_labels"]
    np.savez(path, **content)
    return path


def test_unlabelled_images_train_evaluate_picture_explore_and_list(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scans = write_png_folder(tmp_path / "scans", known_arrays(n_train=120)["train_images"])
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(scans), *FAST, "--out", str(run),
                 "--tracker", "tensorboard"]) == 0
    assert {p.name for p in run.iterdir()} >= {"reconstructions.png", "samples.png",
                                               "loss_curves.png", "provenance.json",
                                               "tensorboard"}
    data = json.loads((run / "provenance.json").read_text())["data"]
    assert data["labelled"] is False and data["class_names"] == []
    assert data["format"] == "image-folder" and data["test_split"]["size"] == 12
    assert json.loads((run / "config.json").read_text())["dataset"] == str(scans)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--nll", "--samples", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 12 and report["nll"] > 0 and report["data_sha256"] == data["sha256"]
    assert main(["reconstruct", str(run), "--n", "8"]) == 0
    assert main(["sample", str(run), "--n", "4"]) == 0
    assert main(["explore", str(run), "--points", "10"]) == 0
    page = (run / "explorer.html").read_text()
    payload = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert payload["latents"]["labelled"] is False and payload["class_names"] == []
    # The classifier-based measures need labels: one line, before any classifier is trained.
    assert main(["evaluate", str(run), "--fid", "--classifier-dir", str(tmp_path / "c")]) == 2
    _one_line(capsys, "has no labels", "--fid")
    assert not (tmp_path / "c").exists()
    assert main(["runs", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert " scans " in table and str(scans) not in table  # the dataset by its folder's name


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), ["bad.npz", "not a readable .npz"]),
    (lambda p: np.savez(p, x_train=np.zeros((5, 32, 32), np.uint8)),
     ["bad.npz (array 'x_train')", "(5, 32, 32)", "--resize"]),
    (lambda p: np.savez(p, x_train=np.zeros((5, 28, 28)), y_train=np.zeros(4, np.int64)),
     ["array 'y_train'", "4 labels", "5 images"]),
    (lambda p: np.savez(p, x_train=np.full((5, 28, 28), np.nan)), ["NaN"]),
])
def test_a_bad_file_is_one_line_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object,
        words: list[str]) -> None:
    path = tmp_path / "bad.npz"
    make(path)  # type: ignore[operator]
    assert main(["train", "--dataset", str(path), *FAST, "--out", str(tmp_path / "run")]) == 2
    _one_line(capsys, *words)
    assert not (tmp_path / "run").exists()


def test_a_text_file_named_png_is_refused(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_png_folder(tmp_path / "pngs", known_arrays(n_train=4)["train_images"])
    (folder / "notes.png").write_text("not an image")
    assert main(["train", "--dataset", str(folder), *FAST, "--out", str(tmp_path / "run")]) == 2
    _one_line(capsys, "notes.png is not an image file")
    assert not (tmp_path / "run").exists()


def test_a_conditional_model_needs_labels(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _npz(tmp_path / "plain.npz", labelled=False)
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(path), "--model", "cvae", *FAST, "--out",
                 str(out)]) == 2
    _one_line(capsys, "cvae model is conditioned on labels", "plain.npz has none")
    assert not out.exists()


def test_a_conditional_model_gets_one_input_per_class(tmp_path: Path) -> None:
    arrays = known_arrays(n_train=90)
    path = tmp_path / "three.npz"
    np.savez(path, x_train=arrays["train_images"], y_train=arrays["train_labels"] % 3,
             class_names=np.array(["circle", "square", "star"]))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), "--model", "cvae", *FAST, "--out",
                 str(run)]) == 0
    from vaelab.runs.rebuild import load_run

    assert load_run(run).model.config.num_classes == 3
    assert main(["sample", str(run), "--digit", "2", "--n", "4"]) == 0
    assert main(["evaluate", str(run), "--json"]) == 0


def test_changed_data_is_named_and_meaningless_scores_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _npz(tmp_path / "set.npz")  # no test part: one is held out
    keep = tmp_path / "kept.npz"
    shutil.copy(path, keep)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), *FAST, "--out", str(run)]) == 0
    _npz(path, n=121)  # one more image: every held-out index may now point elsewhere
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    _one_line(capsys, "set.npz has changed since this run was trained", "test split was held "
              "out", "may now hold images the model was trained on", "--dataset")
    assert main(["evaluate", str(run), "--split", "train"]) == 0
    _one_line(capsys, "vaelab: warning: the data at", "its train part changed",
              "for the data as it is now")
    assert main(["reconstruct", str(run), "--n", "4"]) == 0
    _one_line(capsys, "vaelab: warning:", "changed since this run was trained")
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    _one_line(capsys, "resuming would go on with other images")
    assert main(["evaluate", str(run), "--dataset", str(keep)]) == 0  # the data as it was
    assert capsys.readouterr().err == ""


def test_a_changed_test_file_of_its_own_is_scored_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _npz(tmp_path / "set.npz", with_test=True)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), *FAST, "--out", str(run)]) == 0
    with np.load(path) as saved:
        arrays = dict(saved)
    arrays["x_test"] = arrays["x_test"][::-1].copy()
    np.savez(path, **arrays)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    _one_line(capsys, "its test part changed")
    assert main(["evaluate", str(run), "--split", "val"]) == 0  # the train part is unchanged
    _one_line(capsys, "its test part changed")


def test_moved_data_is_found_with_dataset(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _npz(tmp_path / "set.npz")
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), *FAST, "--out", str(run)]) == 0
    moved = tmp_path / "elsewhere.npz"
    path.rename(moved)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    _one_line(capsys, "set.npz, is no longer there", "--dataset PATH")
    assert main(["evaluate", str(run), "--dataset", str(moved)]) == 0
    assert capsys.readouterr().err == ""  # the same content: nothing to say
    assert main(["evaluate", str(run), "--dataset", "mnist-sample", "--limit", "20"]) == 0
    _one_line(capsys, "reading mnist-sample, not", "the data this run was trained on")


@pytest.mark.slow
@pytest.mark.parametrize("form", ["idx-parts", "npy"])
def test_a_study_report_and_explorer_on_the_other_two_forms(
        form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder of IDX parts (labelled) and the .npy (unlabelled) go through the study, the
    report and the explorer, as the page's PNG folder and .npz do in fresh processes."""
    arrays = known_arrays(n_train=200, n_test=40)
    if form == "npy":
        data = tmp_path / "digits.npy"
        np.save(data, arrays["train_images"])
    else:
        data = write_idx_parts(tmp_path / "parts", arrays)
    study = tmp_path / "study"
    # Ten passes of the classifier over the 200 training images, not the default's 300.
    assert main(["study", "--dataset", str(data), "--epochs", "1", "--z-dims", "1,2",
                 "--prior-samples", "200", "--classifier-dir", str(tmp_path / "classifiers"),
                 "--classifier-epochs", "10", "--device", "cpu", "--out", str(study)]) == 0
    assert main(["report", str(study)]) == 0
    assert main(["explore", str(study / "z2")]) == 0
    text = (study / "report.md").read_text()
    results = json.loads((study / "results.json").read_text())
    assert [p["z_dim"] for p in results["rate_distortion"]["points"]] == [1, 2]
    if form == "npy":
        assert "has no labels, so no classifier" in text and "digit_map" not in text
    else:
        assert "has no labels" not in text and "Fréchet distance" in text
        assert results["classifier"]["epochs"] == 10 and "(10 epochs)" in text
        assert results["classifier"]["settings"]["epochs"] == 10
    assert (study / "z2" / "explorer.html").is_file()
    capsys.readouterr()
