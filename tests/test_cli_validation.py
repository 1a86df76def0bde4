"""Every CLI flag rejects bad values with one line naming the flag and what it accepts.

The expected wording and limits are written out here by hand, so a changed range or a
reworded message fails a case instead of changing with it.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from vaelab.cli.main import main
from vaelab.config import TrainConfig

# (flag, a bad value, words the one-line error must contain)
_RANGES = [
    ("--z-dim", "0", "a positive integer from 1 to 4096"),
    ("--z-dim", "4097", "a positive integer from 1 to 4096"),
    ("--z-dim", "many", "expects int"),
    ("--iw-samples", "0", "from 1 to 10000"),
    ("--iw-samples", "10001", "from 1 to 10000"),
    ("--n-pseudo-inputs", "0", "from 1 to 100000"),
    ("--n-pseudo-inputs", "100001", "from 1 to 100000"),
    ("--beta", "-1", "0 or more"),
    ("--beta", "nan", "finite"),
    ("--beta", "inf", "finite"),
    ("--beta", "lots", "expects float"),
    ("--val-size", "-1", "from 0 to 10000000"),
    ("--val-size", "10000001", "from 0 to 10000000"),
    ("--epochs", "0", "from 1 to 1000000"),
    ("--epochs", "1000001", "from 1 to 1000000"),
    ("--batch-size", "0", "from 1 to 1000000"),
    ("--batch-size", "1000001", "from 1 to 1000000"),
    ("--batch-size", "128.5", "expects int"),
    ("--lr", "0", "greater than 0"),
    ("--lr", "-1", "greater than 0"),
    ("--lr", "nan", "finite"),
    ("--seed", "-1", "from 0 to 4294967295"),
    ("--seed", "4294967296", "from 0 to 4294967295"),
    ("--grad-clip", "0", "greater than 0"),
    ("--grad-clip", "inf", "finite"),
    ("--kl-warmup", "-1", "from 0 to 1000000"),
    ("--kl-warmup", "1000001", "from 0 to 1000000"),
    ("--checkpoint-every", "-1", "from 0 to 1000000000"),
    ("--image-every", "0", "from 1 to 1000000"),
    ("--device", "tpu", "one of auto, cpu, cuda, mps"),
    ("--binarize", "half", "one of none, dynamic, static"),
    ("--precision", "fp8", "one of fp32, bf16, auto"),
    ("--lr-schedule", "exponential", "one of burda, constant, cosine, plateau, step"),
    ("--lr-warmup", "-1", "from 0 to 1000000"),
    ("--lr-min", "-1", "0 or more"),
    ("--lr-gamma", "1", "greater than 0 and less than 1"),
    ("--lr-gamma", "0", "greater than 0 and less than 1"),
    ("--lr-step-every", "-1", "from 0 to 1000000"),
    ("--lr-patience", "-1", "from 0 to 1000000"),
    ("--adam-eps", "0", "greater than 0"),
    ("--adam-betas", "0.9,1", "non-negative numbers less than 1"),
    ("--adam-betas", "0.9", "two numbers, beta1,beta2"),
    ("--recipe", "burda-vae-k2", "unknown recipe 'burda-vae-k2'"),
    ("--budget-epochs", "0", "from 1 to 1000000"),
]

TRAIN_CASES: list[tuple[list[str], tuple[str, ...]]] = [
    ([flag, value], (flag, words)) for flag, value, words in _RANGES
] + [
    (["--model", "gpt5"], ("--model", "unknown model 'gpt5'", "one of", "mlp")),
    (["--dataset", "imagenet"], ("--dataset", "unknown dataset", "one of", "mnist-sample")),
    (["--compile=yes"], ("--compile",)),
    (["--preset", "huge"], ("--preset", "choose from", "seed")),
    (["--config", "/nonexistent/x.toml"], ("--config",)),
    (["--resume", "/nonexistent/run"], ("vaelab train --out",)),
    (["--dataset", "mnist", "--data-dir", "/nonexistent"], ("--data-dir",)),
    (["--val-size", "10000", "--epochs", "1"], ("--val-size", "between 0 and 9999")),
    # The rules between the schedule's settings, and between a recipe and its length.
    (["--lr-schedule", "step"], ("--lr-step-every", "a positive number of epochs")),
    (["--lr-warmup", "2"], ("--lr-warmup", "0 unless lr_schedule is cosine", "constant")),
    (["--lr-step-every", "2", "--lr-schedule", "cosine"], ("--lr-step-every", "unless",
                                                           "step")),
    (["--lr-schedule", "cosine", "--lr-warmup", "10", "--epochs", "10"],
     ("--lr-warmup", "fewer epochs than the run's 10")),
    (["--lr-schedule", "cosine", "--lr-min", "0.01"], ("--lr-min", "below lr (0.001)")),
    (["--budget-epochs", "5"], ("--budget-epochs", "--recipe NAME")),
    (["--recipe", "burda-vae-k1", "--budget-epochs", "5000"],
     ("--budget-epochs", "from 1 to the 3280 epochs of burda-vae-k1")),
    (["--recipe", "burda-vae-k1", "--budget-epochs", "5", "--epochs", "5"],
     ("--budget-epochs and --epochs", "give one")),
    (["--recipe", "burda-vae-k1", "--preset", "seed"], ("--preset seed and --recipe",
                                                        "give one")),
]


def _exit_code(argv: list[str]) -> int:
    """main's return value, or the code of argparse's own exit for a usage error."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(("argv", "words"), TRAIN_CASES,
                         ids=[" ".join(argv) for argv, _ in TRAIN_CASES])
def test_train_flags(argv: list[str], words: tuple[str, ...], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAELAB_DATA", raising=False)
    assert _exit_code(["train", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "run").exists()  # nothing half-written


# (the text of a --config file, words the one-line error must contain)
CONFIG_CASES: list[tuple[str | bytes, tuple[str, ...]]] = [
    ("z-dim = \n", ("is not valid TOML", "line 1")),
    ("[train]\nz-dim = 4\n[train]\n", ("is not valid TOML",)),
    (b"z-dim = 4\n\xff\n", ("is not valid TOML", "utf-8")),
    ("learning-rate = 0.01\n", ("unknown setting(s) learning_rate", "vaelab train --help")),
    ("[train]\nz_dims = 4\n", ("unknown setting(s) z_dims",)),
    ("[training]\nz-dim = 4\n", ("unknown setting(s) training",)),
    ("train = 4\n", ("train must be a table of settings", "not int")),
    ("z-dim = 0\n", ("config file ", "settings.toml: z-dim must be a positive integer from 1 "
                     "to 4096, got 0", "override it with --z-dim")),
    ('beta = "high"\n', ("settings.toml: beta must be", "float", "'high'", "--beta")),
    ('preset = "huge"\n', ("unknown preset 'huge'", "seed")),
]


@pytest.mark.parametrize(("text", "words"), CONFIG_CASES,
                         ids=["empty-value", "table-twice", "not-utf8", "unknown-key",
                              "misspelled-key", "unknown-table", "train-not-a-table",
                              "out-of-range", "wrong-type", "unknown-preset"])
def test_bad_config_files(text: str | bytes, words: tuple[str, ...], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    # Should the file be accepted, the run would stay short.
    argv = ["train", "--config", str(path), "--epochs", "1", "--batch-size", "1000",
            "--device", "cpu", "--out", str(tmp_path / "run")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "run").exists()


def test_a_config_path_that_is_a_folder(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["train", "--config", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"cannot read config file {tmp_path}" in err and "--config" in err
    assert not (tmp_path / "run").exists()


def test_every_checked_train_field_is_covered() -> None:
    flags = {argv[0] for argv, _ in TRAIN_CASES}
    for f in fields(TrainConfig):
        if (f.metadata.get("rule") or f.metadata.get("choices")) and f.metadata.get("flag"):
            assert "--" + f.name.replace("_", "-") in flags, f.name


OTHER_CASES = [
    (["evaluate", "RUN", "--split", "bogus"], ("--split", "choose from")),
    (["evaluate", "RUN", "--checkpoint", "bogus"], ("--checkpoint", "choose from")),
    (["evaluate", "RUN", "--device", "tpu"], ("--device", "choose from")),
    (["evaluate", "RUN", "--samples", "0"], ("--samples", "at least 1")),
    (["evaluate", "RUN", "--limit", "-5"], ("--limit", "at least 1")),
    (["evaluate", "RUN", "--seed", "-1"], ("--seed", "from 0 to")),
    (["reconstruct", "RUN", "--n", "0"], ("--n", "between 1 and 10000")),
    (["reconstruct", "RUN", "--n", "10001"], ("--n", "between 1 and 10000")),
    (["reconstruct", "RUN", "--split", "bogus"], ("--split", "choose from")),
    (["sample", "RUN", "--n", "0"], ("--n", "between 1 and 10000")),
    (["sample", "RUN", "--seed", str(2**64)], ("--seed", "from 0 to")),
    (["sample", "RUN", "--n", "ten"], ("--n", "invalid int")),
    (["data", "download", "mnist", "--timeout", "0"], ("--timeout", "positive")),
    (["data", "download", "mnist", "--timeout", "nan"], ("--timeout", "greater than 0")),
    (["explore", "RUN", "--points", "0"], ("--points", "at least 2")),
    (["explore", "RUN", "--weights", "int4"], ("--weights", "choose from")),
    (["study", "--epochs", "0"], ("--epochs", "positive")),
    (["study", "--batch-size", "0"], ("--batch-size", "positive")),
    (["study", "--z-dims", "0"], ("--z-dims", "positive")),
    (["study", "--seed", "-1"], ("--seed", "from 0 to")),
    (["report", "RUN", "--device", "tpu"], ("--device", "choose from")),
]


@pytest.mark.parametrize(("argv", "words"), OTHER_CASES,
                         ids=[" ".join(argv) for argv, _ in OTHER_CASES])
def test_other_command_flags(argv: list[str], words: tuple[str, ...], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / "missing-run") if a == "RUN" else a for a in argv]
    if argv[0] == "study":
        argv += ["--out", str(tmp_path / "study")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
