"""The code passes ruff, whose rules include the ban on unpickling (torch.load, pickle)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_ruff_passes_on_the_whole_tree() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests",
                           "benchmarks"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unpickling_ban_is_enforced(tmp_path: object) -> None:
    """A module that calls torch.load is refused by the rule the tree is checked with."""
    from pathlib import Path

    bad = Path(str(tmp_path)) / "src" / "vaelab_probe.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("import pickle\n\nimport torch\n\n\ndef f(p: str) -> object:\n"
                   "    return torch.load(p), pickle\n")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(REPO / "pyproject.toml"), str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "TID251" in done.stdout and "torch.load" in done.stdout and "pickle" in done.stdout
