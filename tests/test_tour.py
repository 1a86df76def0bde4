"""docs/tour.ipynb runs from top to bottom in a fresh kernel, writing only to a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, sample_classifier

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TOUR = REPO / "docs" / "tour.ipynb"
# Pictures the tour shows: reconstructions, samples, the encoded test digits, the decoded
# plane, and two of the study's figures.
PICTURES = 6


@pytest.fixture
def data_root(classifier_cache: Path, tmp_path: Path) -> Path:
    """A data root whose classifiers/ holds mnist-sample's digit classifier, so the tour's study
    finds it cached as a returning user would (the cache is shared with test_study.py, which
    trains it once when missing; this fixture would too)."""
    _, path = sample_classifier(classifier_cache)
    root = tmp_path / "data"
    (root / "classifiers").mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(path.with_suffix(suffix), root / "classifiers")
    return root


def test_the_tour_is_stored_without_outputs() -> None:
    notebook = nbformat.read(TOUR, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_tour_runs_without_an_error(data_root: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(TOUR, as_version=4)
    cwd, temp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    temp.mkdir()
    # The kernel inherits the environment: the data root above, a temp folder to inspect, and
    # one thread, which avoids oversubscription stalls on a shared machine (conftest.one_thread).
    monkeypatch.setenv("VAELAB_DATA", str(data_root))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    shown = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(shown) == PICTURES
    assert not [out for out in outputs if out.output_type == "stream" and out.name == "stderr"]
    # Nothing written where it ran, and its temporary folder was removed by the last cell
    # (torch may leave its own compiler cache there).
    assert list(cwd.iterdir()) == []
    assert not list(temp.glob("vaelab-tour-*"))
