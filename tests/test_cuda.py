"""Whole training runs on a CUDA GPU, through the public interfaces only; skipped without one.

`pytest -m cuda` runs these with the other CUDA tests (benchmarks/gpu_suite.py does so on the
GPU machine). Runs are trained with ``vaelab.fit(vaelab.TrainConfig(...))``, resumed with
``vaelab train --resume`` and read back from their run directory's metrics.jsonl, a few epochs
each on the shipped mnist-sample set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import vaelab
from vaelab.cli.main import main as vaelab_main

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

EPOCHS = 3


def _train(run_dir: Path, **settings: Any) -> list[dict[str, Any]]:
    values = {"dataset": "mnist-sample", "epochs": EPOCHS, "batch_size": 128, "seed": 1,
              "device": "cuda", "out": str(run_dir), **settings}
    vaelab.fit(vaelab.TrainConfig(**values))
    return _history(run_dir)


def _history(run_dir: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in records)
    return records


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The default CUDA run: fp32, every step replayed from a CUDA graph."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VAELAB_CUDA_GRAPHS", raising=False)
        return _train(tmp_path_factory.mktemp("graphs") / "run")


def test_graph_run_trains(graph_run: list[dict[str, Any]]) -> None:
    assert [r["epoch"] for r in graph_run] == list(range(1, EPOCHS + 1))
    assert graph_run[-1]["val_loss"] < graph_run[0]["val_loss"]


def test_eager_run_reaches_the_graph_runs_loss(graph_run: list[dict[str, Any]], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAELAB_CUDA_GRAPHS", "0")
    eager = _train(tmp_path / "eager")
    # Same initialisation and data order; the noise may be drawn at other Philox offsets, so
    # the two are compared as trainings, not bit for bit.
    assert eager[-1]["train_loss"] == pytest.approx(graph_run[-1]["train_loss"], rel=0.02)
    assert eager[-1]["val_loss"] == pytest.approx(graph_run[-1]["val_loss"], rel=0.02)


def test_bf16_run_reaches_the_fp32_runs_loss(graph_run: list[dict[str, Any]],
                                             tmp_path: Path) -> None:
    bf16 = _train(tmp_path / "bf16", precision="bf16")
    assert bf16[-1]["val_loss"] == pytest.approx(graph_run[-1]["val_loss"], rel=0.03)


def test_graph_trained_run_resumes_on_the_cpu(graph_run: list[dict[str, Any]], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAELAB_CUDA_GRAPHS", raising=False)
    run_dir = tmp_path / "run"
    first = _train(run_dir, epochs=EPOCHS - 1)
    code = vaelab_main(["train", "--resume", str(run_dir), "--device", "cpu",
                        "--epochs", str(EPOCHS)])
    assert code == 0
    resumed = _history(run_dir)
    assert [r["epoch"] for r in resumed] == list(range(1, EPOCHS + 1))
    assert resumed[: EPOCHS - 1] == first
    # The CPU epoch continued the CUDA run, Adam's moments included: it ends where the
    # uninterrupted CUDA run ends, up to noise drawn by another generator.
    assert resumed[-1]["val_loss"] == pytest.approx(graph_run[-1]["val_loss"], rel=0.03)
    loaded = vaelab.load(str(run_dir), which="last", device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.model.parameters())
