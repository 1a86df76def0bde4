"""The "Your own images" half of docs/your-own.md runs as written: its Python and bash blocks,
in order, each command in a fresh process, from an empty folder; the output it shows is the
output vaelab gives. For the suite's time, and only that, the studies get the flags in
`SHORTER` appended (later flags override earlier ones).

This is also the end-to-end test of user data in fresh processes: a folder of PNGs and an
.npz through data check, train, evaluate --nll, reconstruct, sample, explore, study and report.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOC = REPO / "docs" / "your-own.md"
SECTION = "## Your own images"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# One epoch for each of two z_dims, fewer prior samples and ten classifier epochs (not the
# 112 that 60,000 images seen take on 540); the classifier kept in the test's folder rather
# than under the data root.
SHORTER = {"study": ["--epochs", "1", "--z-dims", "1,2", "--prior-samples", "500",
                     "--classifier-epochs", "10", "--classifier-dir", "classifiers"]}


def _blocks() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text
    return list(_FENCE.findall(text.split(SECTION, 1)[1]))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return env


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def _command(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[0] == "vaelab", line  # the page shows vaelab commands only
    return [sys.executable, "-m", "vaelab", *words[1:], *SHORTER.get(words[1], [])]


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = _blocks()
    assert [lang for lang, _ in blocks].count("bash") >= 4
    outputs: dict[str, str] = {}
    for lang, body in blocks:
        if lang == "python":
            _run([sys.executable, "-c", body], tmp_path)
        elif lang == "bash":
            for line in body.splitlines():
                if line.strip():
                    outputs[line.strip()] = _run(_command(line), tmp_path)
    for run in ("my-digits", "my-data"):
        folder = tmp_path / "runs" / run
        assert (folder / "explorer.html").is_file() and (folder / "provenance.json").is_file()
    assert (tmp_path / "runs" / "my-digits" / "samples.png").is_file()
    # The labelled study names the folder's classes; the unlabelled one says what it leaves out.
    labelled = (tmp_path / "runs" / "digits-study" / "report.md").read_text()
    unlabelled = (tmp_path / "runs" / "data-study" / "report.md").read_text()
    assert "digit_map" in labelled and "digit_map" not in unlabelled
    assert "no labels" in unlabelled
    # The output the page shows (past its first line, which holds the reader's own path, and
    # up to the lines it leaves out) is what `vaelab data check` printed.
    shown = next(body for lang, body in blocks if lang == "text").splitlines()
    printed = outputs["vaelab data check my-digits"].splitlines()
    assert shown[0].endswith(printed[0].rsplit("/", 1)[1])
    kept = [line for line in shown[1:] if line != "…"]
    assert printed[1:1 + len(kept)] == kept
