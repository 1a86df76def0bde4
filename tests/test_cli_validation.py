"""Every CLI flag rejects bad values with one line naming the flag and what it accepts.

The train flags are generated from TrainConfig, so the cases are too: each checked field
gets a value below its range, above its upper limit, a non-number and, for floats, nan/inf.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path

import pytest

from vaelab.cli.main import main
from vaelab.config import _UPPER, TrainConfig


def _train_cases() -> list[tuple[list[str], tuple[str, ...]]]:
    cases: list[tuple[list[str], tuple[str, ...]]] = []
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        check, choices = f.metadata.get("check"), f.metadata.get("choices")
        is_int = "int" in str(hints[f.name])
        if check and is_int:
            low = 1 if check == "positive" else 0
            upper = _UPPER.get(f.name)
            expected = f"from {low} to {upper}" if upper else f"at least {low}"
            cases.append(([flag, str(low - 1)], (flag, expected)))
            if upper:
                cases.append(([flag, str(upper + 1)], (flag, expected)))
            cases.append(([flag, "many"], (flag, "expects int")))
        elif check:
            expected = "greater than 0" if check == "positive" else "0 or more"
            cases.append(([flag, "0" if check == "positive" else "-1"], (flag, expected)))
            cases += [([flag, "nan"], (flag, "finite")), ([flag, "inf"], (flag, "finite")),
                      ([flag, "lots"], (flag, "expects float"))]
        elif choices:
            cases.append(([flag, "bogus"], (flag, "one of", choices[0])))
    cases += [
        (["--model", "gpt5"], ("--model", "unknown model 'gpt5'", "one of", "mlp")),
        (["--dataset", "imagenet"], ("--dataset", "unknown dataset", "one of", "mnist-sample")),
        (["--compile=yes"], ("--compile",)),
        (["--preset", "huge"], ("--preset", "choose from", "seed")),
        (["--config", "/nonexistent/x.toml"], ("--config",)),
        (["--resume", "/nonexistent/run"], ("vaelab train --out",)),
        (["--dataset", "mnist", "--data-dir", "/nonexistent"], ("--data-dir",)),
        (["--val-size", "10000", "--epochs", "1"], ("--val-size", "between 0 and 9999")),
    ]
    return cases


TRAIN_CASES = _train_cases()


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


def test_every_checked_train_field_is_covered() -> None:
    flags = {argv[0] for argv, _ in TRAIN_CASES}
    for f in fields(TrainConfig):
        if f.metadata.get("check") or f.metadata.get("choices"):
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
