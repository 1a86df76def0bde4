"""bench_nll.py runs recipes and writes records; reproductions.py renders them, and only them.

bench_nll runs one recipe for real (the tiny dataset, one compressed epoch, a two-point curve);
the rendering rules are checked on that record and on copies of it with their numbers changed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load("bench_nll")
render = _load("reproductions")


@pytest.fixture
def record(tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
           one_thread: None) -> dict[str, Any]:
    out = tmp_path / "bench"
    assert bench.main(["--recipes", "burda-vae-k1", "--budget-epochs", "3", "--curve", "2",
                       "--curve-samples", "2", "--samples", "4", "--set",
                       f"dataset={tiny_dataset}", "--data-dir", str(tiny_dataset_dir),
                       "--device", "cpu", "--out", str(out)]) == 0
    saved: dict[str, Any] = json.loads((out / "records" / "burda-vae-k1.json").read_text())
    assert json.loads((out / "results.json").read_text()) == [saved]
    return saved


def test_a_record_holds_the_run_and_how_it_was_scored(record: dict[str, Any]) -> None:
    assert record["recipe"] == "burda-vae-k1" and record["published"] == 86.76
    assert (record["epochs"], record["recipe_epochs"], record["compressed"]) == (3, 3280, True)
    assert record["overrides"] == {"dataset": "tiny"}
    assert record["samples"] == 4 and record["test_images"] == 100  # the whole tiny test split
    assert record["evaluation"] == "reduced: K = 4" and record["checkpoint"] == "last"
    assert [p["epochs"] for p in record["curve"]] == [1, 3]
    assert [p["samples"] for p in record["curve"]] == [2, 4]
    assert record["curve"][-1]["nll"] == record["nll"] and 0 < record["nll"] < 600
    assert record["train_seconds"] > 0 and record["machine"]["kind"] == "cpu"
    assert record["machine"]["cpu_capability"]
    assert record["command"].startswith("python benchmarks/bench_nll.py --recipes burda-vae-k1")
    assert record["vaelab"][0].startswith("vaelab train --recipe burda-vae-k1 --budget-epochs 3")


def test_fitted_budgets_come_from_a_measured_rate(tiny_dataset: str, tiny_dataset_dir: Path,
                                                  tmp_path: Path, one_thread: None) -> None:
    args = bench.parse_args(["--recipes", "burda-vae-k1", "--fit-seconds", "2", "--set",
                             f"dataset={tiny_dataset}", "--data-dir", str(tiny_dataset_dir),
                             "--device", "cpu", "--out", str(tmp_path)])
    import torch

    plan = bench.plan("burda-vae-k1", 0, args, torch.device("cpu"), tmp_path)
    budget = plan.budget
    assert budget["steps_per_s"] > 0 and budget["steps_per_epoch"] == 30  # 600 images, batch 20
    expected = max(1, int(0.9 * 2 / budget["epoch_s"]))
    assert plan.config.epochs == expected and plan.config.recipe == "burda-vae-k1"


def _page(tmp_path: Path) -> Path:
    doc = tmp_path / "page.md"
    doc.write_text(f"intro\n{render.BEGIN}\nold rows\n{render.END}\noutro\n")
    return doc


def test_the_table_shows_records_and_says_what_is_missing(record: dict[str, Any],
                                                          tmp_path: Path) -> None:
    text = render.render([record], _page(tmp_path).read_text(), render.NO_GPU, "fig.png")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old rows" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    mine = [row for row in rows if f"{record['nll']:.2f} ± {record['nll_se']:.2f}" in row]
    assert len(mine) == 1 and mine[0].startswith("| `burda-vae-k1` | 86.76 |")
    assert "3 of 3,280 (compressed); modified: dataset=tiny" in mine[0]
    assert "K = 4, 100 test images, last (reduced: K = 4)" in mine[0]
    assert "python benchmarks/bench_nll.py" in mine[0]
    assert "| `burda-vae-k1` | 86.76 | - | not measured: no GPU was available (GPU)" in text
    assert "| `vampprior` | 85.57 | 85.79 | not yet measured (CPU)" in text
    assert len(rows) == 2 * 9  # every recipe, a CPU and a GPU row
    assert "![test NLL against training passes](fig.png)" in text
    empty = render.render([], _page(tmp_path).read_text(), render.NO_GPU, "fig.png")
    assert "no figure" in empty and "(CPU) |" in empty


def _as(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    changed.update(changes)
    return changed


def test_the_cpu_target_sentence_fires_only_where_it_applies(record: dict[str, Any]) -> None:
    full = {"evaluation": "the recipe's protocol", "train_seconds": 3000.0}
    met = render.verdicts([_as(record, nll=88.1, **full)])
    assert len(met) == 1 and "88.10 ±" in met[0] and "+1.34 nats from the paper's 86.76" in met[0]
    assert "target of at most 88.5 nats within one hour is met" in met[0]
    missed = render.verdicts([_as(record, nll=89.0, **full)])
    assert "is missed by 0.50 nats" in missed[0]
    assert "not judged: reduced: K = 4" in render.verdicts([_as(record, nll=88.0)])[0]
    slow = render.verdicts([_as(record, nll=88.0, evaluation="the recipe's protocol",
                                train_seconds=4000.0)])
    assert "not judged: it trained 1.11 hours" in slow[0]
    both = render.verdicts([_as(record, nll=88.9, evaluation="the recipe's protocol",
                                train_seconds=4000.0)])
    assert "missed on both counts: by 0.40 nats, after 1.11 hours" in both[0]
    gpu = _as(record, **full)
    gpu["machine"] = {**gpu["machine"], "kind": "gpu"}
    assert render.verdicts([gpu, _as(record, recipe="burda-iwae-k5", **full)]) == []


def test_the_figure_is_legible(record: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    found = render.figure([record, _as(record, recipe="burda-iwae-k5", published=85.54)], path)
    assert path.stat().st_size > 0 and (found.width, found.height) == (820, 480)
    assert found.ok, found  # text at least 10 px, nothing overlapping or cut off
