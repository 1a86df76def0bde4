"""The README stays short and true: its Python example runs, and every relative link resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"

MAX_README_LINES = 250
# The command CI runs (.ci/run); the README must show it byte for byte in a bash block.
TEST_COMMAND = "pip install -r requirements-test.txt -e . && python -m pytest -q"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# [text](target) and ![alt](target); the target ends at the first space or closing parenthesis.
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _code_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (links inside code are not links)."""
    return _FENCE.sub("", text)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower()
    kept = "".join(ch for ch in text
                   if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md")), REPO / "benchmarks" / "README.md"]


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it at most {MAX_README_LINES} and move detail "
        "into a docs/*.md topic page")


def test_readme_shows_the_ci_test_command() -> None:
    blocks = _code_blocks(README.read_text(encoding="utf-8"), "bash")
    assert any(TEST_COMMAND in block.splitlines() for block in blocks), (
        f"README.md must show `{TEST_COMMAND}` on its own line in a ```bash block (.ci/run "
        "runs exactly that command)")


def test_docs_have_one_home() -> None:
    assert not (DOCS / "readme").exists(), (
        "docs/readme/ must not exist: each topic has one page, docs/<topic>.md")


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(document.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # https:, mailto: and the like
        path_part, _, fragment = target.partition("#")
        path = (document.parent / path_part).resolve() if path_part else document
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and path.suffix == ".md" and fragment not in _anchors(path):
            broken.append(f"{target} (no heading with anchor #{fragment})")
    assert not broken, f"{document.relative_to(REPO)}: broken links: {', '.join(broken)}"


def test_readme_python_examples_run(tmp_path: Path) -> None:
    blocks = _code_blocks(README.read_text(encoding="utf-8"), "python")
    assert blocks, "README.md has no ```python example"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for number, code in enumerate(blocks, 1):
        script = tmp_path / f"readme_example_{number}.py"
        script.write_text(code, encoding="utf-8")
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (
            f"README.md python block {number} failed (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
