"""benchmarks/commit.py: the commit a benchmark record names."""

from __future__ import annotations

import subprocess
from pathlib import Path

from commit import git_commit


def test_the_commit_checked_out_or_unknown(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    assert git_commit(repo) == "unknown"  # a repository without a commit
    (repo / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "m"], check=True)
    head = (repo / ".git" / "refs" / "heads" / "main").read_text().strip()
    assert len(head) == 40 and git_commit(repo) == head
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_commit(plain) == "unknown"  # no repository (tmp_path is outside the checkout)
