"""The run directory's provenance file: sections kept side by side, bad files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaelab.errors import VaelabError
from vaelab.runs.layout import PROVENANCE, RunDir


def test_provenance_sections_are_kept_side_by_side(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.read_provenance() == {}
    run.record_provenance("model", {"plugin": "my_vae.py", "sha256": "ab"})
    run.record_provenance("data", {"sha256": "cd"})
    run.record_provenance("model", {"plugin": "my_vae.py", "sha256": "ef"})
    assert run.read_provenance() == {"model": {"plugin": "my_vae.py", "sha256": "ef"},
                                     "data": {"sha256": "cd"}}
    assert run.provenance == tmp_path / PROVENANCE
    assert run.provenance in run.files_to_share()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"model": 3}'])
def test_a_damaged_provenance_file_is_one_line_error(tmp_path: Path, content: str) -> None:
    (tmp_path / PROVENANCE).write_text(content)
    with pytest.raises(VaelabError, match=PROVENANCE) as caught:
        RunDir(tmp_path).read_provenance()
    assert "\n" not in str(caught.value)
