"""The command line, run in-process through ``main(argv) -> int``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import reference_elbo
from vaelab.cli.main import main
from vaelab.data import load_splits
from vaelab.runs.rebuild import load_run


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


def test_train_evaluate_reconstruct_sample(
    train_args: list[str], tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *train_args]) == 0
    out = capsys.readouterr().out
    assert "epoch" in out and "run directory" in out
    run = tmp_path / "run"
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["n"] == 100
    # The best checkpoint scored on the test digits, computed here without vaelab's loss code.
    model = load_run(run, which="best").model
    test = load_splits(tiny_dataset, tiny_dataset_dir).test_images
    expected = reference_elbo(model, torch.from_numpy(test))
    for key in ("neg_elbo", "recon_bce", "kl", "mse"):
        assert report[key] == pytest.approx(expected[key], rel=1e-5), key
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert "negative ELBO" in capsys.readouterr().out
    assert main(["reconstruct", str(run), "--n", "20", "--out", str(tmp_path / "r.png")]) == 0
    width, height = _png_size(tmp_path / "r.png")
    # 10 columns, 4 rows (2 pairs of originals above reconstructions), 2x upscaled
    assert (width, height) == (2 * (10 * 30 + 2), 2 * (4 * 30 + 2))
    assert main(["sample", str(run), "--n", "64", "--out", str(tmp_path / "s.png")]) == 0
    assert _png_size(tmp_path / "s.png") == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2))


def test_resume_extends_a_run(train_args: list[str], tmp_path: Path) -> None:
    assert main(["train", *train_args]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "3"]) == 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_toml_config_and_flag_precedence(train_args: list[str], tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[train]\nz-dim = 3\nepochs = 5\nbeta = 2.0\n")
    assert main(["train", *train_args, "--config", str(toml)]) == 0  # flags say epochs 2, z 4
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["z_dim"], saved["epochs"], saved["beta"]) == (4, 2, 2.0)


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--z-dim", "0", ("--z-dim", "positive")),
        ("--z-dim", "-2", ("--z-dim", "positive")),
        ("--batch-size", "0", ("--batch-size", "positive")),
        ("--epochs", "0", ("--epochs", "positive")),
        ("--lr", "0", ("--lr", "positive")),
        ("--lr=-1e-3", None, ("--lr", "positive")),
        ("--lr", "nan", ("--lr", "finite")),
        ("--model", "resnet", ("unknown model 'resnet'", "mlp")),
        ("--dataset", "cifar", ("unknown dataset 'cifar'", "mnist")),
        ("--epochs", "ten", ("--epochs", "int")),
    ],
)
def test_bad_training_flags(
    flag: str,
    value: str | None,
    words: tuple[str, ...],
    train_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [*train_args, flag] + ([value] if value is not None else [])
    code = main(["train", *args]) if flag != "--epochs" or value != "ten" else None
    if code is None:
        with pytest.raises(SystemExit) as info:
            main(["train", *args])
        code = info.value.code
    assert code == 2
    _one_line_error(capsys, *words)
    assert not (tmp_path / "run").exists()


def test_missing_data_is_one_line_with_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    _one_line_error(capsys, "vaelab data download mnist", "--data-dir")
    assert not (tmp_path / "run").exists()


def test_corrupt_data_file(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tiny_dataset_dir / "tiny" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-12])  # truncated gzip
    assert (
        main(
            [
                "train",
                "--dataset",
                tiny_dataset,
                "--data-dir",
                str(tiny_dataset_dir),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    _one_line_error(capsys, "t10k-labels-idx1-ubyte.gz")


def test_checkpoint_dir_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty")]) == 2
    _one_line_error(capsys, "best.safetensors")
    assert main(["sample", str(tmp_path / "nowhere")]) == 2
    _one_line_error(capsys, "does not exist")


def test_checkpoint_of_another_architecture(
    train_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *train_args, "--epochs", "1"]) == 0
    config = tmp_path / "run" / "config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "model": "conv"}))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "another run")


def test_models_and_data_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "seed" in out and "mlp" in out and "conv" in out
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist-sample" in out and "CC BY-SA 3.0" in out


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from vaelab.cli.main import build_parser; build_parser(); import vaelab; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vaelab", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "vaelab" in out.stdout


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    from vaelab.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = [[name] for name in commands.choices] + [["data", "list"], ["data", "download"]]
    assert {"train", "evaluate", "study", "report", "explore"} <= set(commands.choices)
    for argv in names:
        with pytest.raises(SystemExit) as info:
            main([*argv, "--help"])
        assert info.value.code == 0, argv
        assert "usage: vaelab" in capsys.readouterr().out
