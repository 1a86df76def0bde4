"""`vaelab runs`: one row per run directory, every status, read-only; and `vaelab runs compare`.

One folder is built once for the module: a finished and evaluated run, an interrupted one, one a
live lock holds, one that never reached a checkpoint, two corrupt ones, a study member one level
down, and MLflow's artifact copies that must not count as runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_digits, stop_after, write_idx
from vaelab.cli.main import main
from vaelab.cli.runs_cmd import format_duration
from vaelab.config import TrainConfig
from vaelab.runs.inventory import COLUMNS, STATUSES
from vaelab.runs.lock import RunLock
from vaelab.training import RunOptions, TrainingInterrupted, fit

DATASET = "tiny-runs"
STEPS_PER_EPOCH = 9  # 540 training images (60 go to validation) at batch 64


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """conftest's tiny dataset, registered for the whole module (its fixture is per test)."""
    from vaelab.data.datasets import DatasetSpec, dataset_registry
    from vaelab.data.idx import decompressed_bytes

    root = tmp_path_factory.mktemp("data")
    folder = root / DATASET
    folder.mkdir()
    files = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    train_x, train_y = make_digits(600, seed=1)
    test_x, test_y = make_digits(100, seed=2)
    for key, array in zip(files, (train_x, train_y, test_x, test_y), strict=True):
        write_idx(folder / f"{files[key]}.gz", array)
    sums = {key: hashlib.sha256(decompressed_bytes(folder / f"{name}.gz")).hexdigest()
            for key, name in files.items()}
    dataset_registry._entries[DATASET] = DatasetSpec(name=DATASET, description="test data",
                                                      sha256=sums)
    yield root
    dataset_registry._entries.pop(DATASET, None)


def _config(data: Path, out: Path, **kw: Any) -> TrainConfig:
    return TrainConfig(**{"model": "mlp", "dataset": DATASET, "data_dir": str(data), "z_dim": 3,
                          "epochs": 2, "batch_size": 64, "device": "cpu", "out": str(out),
                          **kw})



@pytest.fixture(scope="module")
def runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory,
         one_thread: None) -> Iterator[Path]:
    """The folder of run directories; ``locked`` stays locked by this process meanwhile."""
    root = tmp_path_factory.mktemp("runs")
    finished = root / "finished"
    fit(_config(tiny_data, finished))
    # The whole test split, so `vaelab evaluate` keeps its result for `vaelab runs`.
    assert main(["evaluate", str(finished), "--device", "cpu", "--nll", "--samples", "4"]) == 0

    with pytest.raises(TrainingInterrupted):  # stopped in epoch 3 of 4, as Ctrl-C would
        fit(_config(tiny_data, root / "interrupted", z_dim=2, epochs=4),
            RunOptions(stop_requested=stop_after(2 * STEPS_PER_EPOCH + 4)))

    shutil.copytree(root / "interrupted", root / "locked")
    started = root / "started"  # a training that died before its first checkpoint
    started.mkdir()
    shutil.copy(finished / "config.json", started / "config.json")
    (started / "metrics.jsonl").write_text("")

    shutil.copytree(finished, root / "torn-checkpoint")
    last = root / "torn-checkpoint" / "last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    shutil.copytree(finished, root / "bad-config")
    (root / "bad-config" / "config.json").write_text('{"model": "mlp", "z_dim":')

    shutil.copytree(finished, root / "study" / "z3")
    # MLflow's default artifact store holds copies of config.json and metrics.jsonl.
    artifacts = root / "mlruns" / "1" / "0123abcd" / "artifacts"
    shutil.copytree(finished, artifacts, ignore=shutil.ignore_patterns("*.safetensors"))
    with RunLock(root / "locked"):
        yield root


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.stat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def _runs(capsys: pytest.CaptureFixture[str], folder: Path, *flags: str) -> str:
    """`vaelab runs FOLDER FLAGS`, checking it succeeded and wrote nothing under ``folder``."""
    before = _snapshot(folder)
    assert main(["runs", str(folder), *flags]) == 0
    assert _snapshot(folder) == before
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _rows(capsys: pytest.CaptureFixture[str], folder: Path, *flags: str) -> list[dict[str, Any]]:
    rows = json.loads(_runs(capsys, folder, "--json", *flags))
    assert isinstance(rows, list)
    return rows


def _history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_every_run_gets_its_status_and_numbers(runs: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rows = {row["run"]: row for row in _rows(capsys, runs)}
    assert set(rows) == {"finished", "interrupted", "locked", "started", "torn-checkpoint",
                         "bad-config", os.path.join("study", "z3")}

    finished, history = rows["finished"], _history(runs / "finished")
    evaluation = json.loads((runs / "finished" / "evaluation.json").read_text())["test/best"]
    assert finished["status"] == "finished" and finished["problem"] is None
    assert (finished["model"], finished["z_dim"], finished["dataset"]) == ("mlp", 3, DATASET)
    assert (finished["epochs_done"], finished["epochs_planned"]) == (2, 2)
    assert finished["best_val"] == pytest.approx(min(r["val_loss"] for r in history))
    assert finished["test_neg_elbo"] == evaluation["neg_elbo"]
    assert finished["test_nll"] == evaluation["nll"]
    assert evaluation["n"] == 100  # the whole test split
    assert finished["seconds"] == pytest.approx(sum(r["seconds"] for r in history))
    assert rows[os.path.join("study", "z3")] | {"run": "finished"} == finished

    interrupted = rows["interrupted"]
    assert interrupted["status"] == "interrupted"
    assert (interrupted["epochs_done"], interrupted["epochs_planned"]) == (2, 4)
    assert interrupted["z_dim"] == 2
    assert interrupted["best_val"] == pytest.approx(
        min(r["val_loss"] for r in _history(runs / "interrupted")))
    assert interrupted["test_neg_elbo"] is None and interrupted["test_nll"] is None

    locked = rows["locked"]
    assert locked["status"] == "locked"
    assert locked["holder"].startswith(f"pid {os.getpid()} on ")
    assert (locked["epochs_done"], locked["epochs_planned"]) == (2, 4)

    started = rows["started"]
    assert started["status"] == "started"
    assert (started["epochs_done"], started["epochs_planned"]) == (None, 2)
    assert started["best_val"] is None and started["seconds"] is None

    torn = rows["torn-checkpoint"]
    assert torn["status"] == "corrupt"
    assert "last.safetensors" in torn["problem"] and "truncated" in torn["problem"]
    bad = rows["bad-config"]
    assert bad["status"] == "corrupt"
    assert "config.json is not readable JSON" in bad["problem"]
    assert {row["status"] for row in rows.values()} == set(STATUSES)


def test_the_table_names_problems_and_holders(runs: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    lines = _runs(capsys, runs).splitlines()
    assert lines[0].split() == list(COLUMNS)
    body = {line.split()[0]: line.split() for line in lines[2:9]}
    assert body["finished"][1] == "finished" and body["finished"][5] == "2/2"
    assert body["interrupted"][1:6] == ["interrupted", "mlp", "2", DATASET, "2/4"]
    assert body["started"][5:9] == ["-/2", "-", "-", "-"]
    assert body["locked"][1] == "locked"
    notes = lines[9:]
    assert any(n.startswith("torn-checkpoint: ") and "last.safetensors" in n for n in notes)
    assert any(n.startswith("bad-config: ") and "config.json" in n for n in notes)
    assert any(n.startswith(f"locked: in use by pid {os.getpid()}") for n in notes)
    assert len(notes) == 3


@pytest.mark.parametrize("column", list(COLUMNS))
def test_sort_orders_by_any_column_with_blanks_last(runs: Path, column: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    field = {"epochs": "epochs_done", "time": "seconds"}.get(column, column)
    values = [row[field] for row in _rows(capsys, runs, "--sort", column)]
    known = [v for v in values if v is not None]
    assert values == known + [None] * (len(values) - len(known))
    assert known == sorted(known)


def test_a_run_directory_lists_itself_and_an_empty_folder_lists_nothing(
        runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [row] = _rows(capsys, runs / "finished")
    assert row["run"] == str(runs / "finished") and row["status"] == "finished"
    assert _rows(capsys, tmp_path) == []
    assert _runs(capsys, tmp_path).strip() == f"no run directories under {tmp_path}"


def test_listing_a_missing_folder_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    _one_line_error(capsys, "nowhere is not a folder")
    assert main(["runs", str(tmp_path), str(tmp_path)]) == 2
    _one_line_error(capsys, "one folder")
    assert main(["runs", str(tmp_path), "--out", "x.png"]) == 2
    _one_line_error(capsys, "--out goes with")
    assert list(tmp_path.iterdir()) == []


def _colour_pixels(png: Path, colour: str) -> int:
    """How many pixels of ``png`` have (almost exactly) matplotlib's ``colour``."""
    import matplotlib
    from matplotlib.colors import to_rgb
    from PIL import Image

    from vaelab.pictures.plots import STYLE

    with matplotlib.rc_context(STYLE):
        rgb = np.array(to_rgb(colour)) * 255
    pixels = np.asarray(Image.open(io.BytesIO(png.read_bytes())).convert("RGB"), dtype=float)
    return int((np.abs(pixels - rgb).max(axis=-1) < 8).sum())


def test_compare_draws_each_run_in_its_own_colour(runs: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curves.png"
    before = _snapshot(runs)
    assert main(["runs", "compare", str(runs / "finished"), str(runs / "interrupted"),
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert _snapshot(runs) == before
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (820, 360)
    # Each run's curves are drawn in its own colour of the cycle, and no third one.
    assert _colour_pixels(out, "C0") > 300
    assert _colour_pixels(out, "C1") > 300
    assert _colour_pixels(out, "C2") == 0

    # Folders with the same name (labelled by their paths then) are still separate runs.
    twin = tmp_path / "elsewhere" / "finished"
    shutil.copytree(runs / "interrupted", twin)
    assert main(["runs", "compare", str(runs / "finished"), str(twin), str(runs / "study" / "z3"),
                 "--out", str(tmp_path / "three.png")]) == 0
    assert _colour_pixels(tmp_path / "three.png", "C1") > 300
    assert _colour_pixels(tmp_path / "three.png", "C2") > 100


@pytest.mark.parametrize("case", ["no runs", "one run", "same run twice", "missing", "no epochs",
                                  "folder of out", "not a png", "with --json"])
def test_compare_refuses_bad_input_in_one_line(case: str, runs: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    one, other = str(runs / "finished"), str(runs / "interrupted")
    out = str(tmp_path / "curves.png")
    argv, words = {
        "no runs": ([], ["two or more"]),
        "one run": ([one], ["two or more"]),
        "same run twice": ([one, one], ["two or more"]),
        "missing": ([one, str(tmp_path / "gone")], ["gone does not exist"]),
        "no epochs": ([one, str(runs / "started")], ["no epoch records"]),
        "folder of out": ([one, other, "--out", str(tmp_path / "no" / "c.png")],
                          ["does not exist"]),
        "not a png": ([one, other, "--out", str(tmp_path / "c.jpg")], [".png"]),
        "with --json": ([one, other, "--json"], ["--json"]),
    }[case]
    argv = argv if "--out" in argv else [*argv, "--out", out]
    assert main(["runs", "compare", *argv]) == 2
    _one_line_error(capsys, *words)
    assert list(tmp_path.iterdir()) == []


def test_durations_read_at_a_glance() -> None:
    assert [format_duration(s) for s in (None, 0.4, 59.4, 59.6, 185, 3599.6, 7620)] == [
        "-", "0s", "59s", "1m00s", "3m05s", "1h00m", "2h07m"]
