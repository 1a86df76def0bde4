"""Recipes: every one builds, trains a few steps, evaluates and records itself; the protocol rules.

The published figures and settings are written out here by hand from the papers, so an edited
recipe fails a case instead of changing with it. The runs use the tiny test dataset (540
training images) and one compressed epoch, so every recipe trains in a second or two.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vaelab.cli.main import main
from vaelab.config import TrainConfig, resolve_config
from vaelab.errors import VaelabError
from vaelab.models import model_registry
from vaelab.recipes import RECIPES, recipe_run, recipe_settings
from vaelab.runs.inventory import summarise

pytestmark = pytest.mark.usefixtures("one_thread")

# name -> (model, K, batch, epochs, published test NLL), from the papers.
PUBLISHED = {
    "burda-vae-k1": ("vae", 1, 20, 3280, 86.76),
    "burda-vae-k5": ("vae", 5, 20, 3280, 86.47),
    "burda-vae-k50": ("vae", 50, 20, 3280, 86.35),
    "burda-iwae-k5": ("iwae", 5, 20, 3280, 85.54),
    "burda-iwae-k50": ("iwae", 50, 20, 3280, 84.78),
    "burda-vae2-k1": ("burda2", 1, 20, 3280, 85.33),
    "burda-iwae2-k50": ("burda2", 50, 20, 3280, 82.90),
    "vampprior": ("vamp", 1, 100, 2000, 85.57),
    "seed-study": ("seed", 1, 32, 100, None),
}


def test_the_recipes_are_the_papers_protocols() -> None:
    assert RECIPES.names() == sorted(PUBLISHED)
    for name, (model, k, batch, epochs, published) in PUBLISHED.items():
        recipe = RECIPES.get(name)
        config = TrainConfig(**recipe_settings(name))
        assert (config.model, config.iw_samples, config.batch_size, config.epochs) == \
            (model, k, batch, epochs), name
        assert recipe.published == published, name
        assert model in model_registry
        assert config.dataset == "mnist" and recipe.nll_samples == 5000
        assert recipe_run(config) is not None and recipe_run(config).full  # type: ignore[union-attr]
        if name.startswith("burda"):  # section 5 of the paper
            assert (config.lr_schedule, config.lr, config.adam_eps, config.adam_betas,
                    config.binarize, config.val_size, recipe.checkpoint) == \
                ("burda", 1e-3, 1e-4, (0.9, 0.999), "dynamic", 0, "last"), name
    vamp = TrainConfig(**recipe_settings("vampprior"))
    assert (vamp.z_dim, vamp.n_pseudo_inputs, vamp.lr, vamp.kl_warmup, vamp.val_size) == \
        (40, 500, 5e-4, 100, 10_000)
    assert RECIPES.get("vampprior").checkpoint == "best"
    # Where vaelab's run is not the paper's, the recipe says so.
    assert any("network differs" in note for note in RECIPES.get("vampprior").notes)


def test_compression_scales_what_is_counted_in_epochs() -> None:
    # 2,000 epochs with a 100-epoch KL warm-up, compressed to 200 and to 20 epochs.
    assert recipe_settings("vampprior", 200)["kl_warmup"] == 10
    assert recipe_settings("vampprior", 20)["kl_warmup"] == 1
    assert recipe_settings("vampprior", 1)["kl_warmup"] == 1  # a warm-up keeps one epoch
    short = TrainConfig(**recipe_settings("burda-vae-k1", 20))
    assert short.epochs == 20 and short.lr_schedule == "burda"
    followed = recipe_run(short)
    assert followed is not None and followed.compressed and not followed.overrides
    assert followed.label() == ("burda-vae-k1 (20 of 3,280 epochs, schedule compressed; the "
                                "recipe's settings)")
    assert followed.brief() == "burda-vae-k1 (compressed 20/3280)"
    with pytest.raises(VaelabError, match="from 1 to the 3280 epochs"):
        recipe_settings("burda-vae-k1", 3281)


def test_every_override_is_named_and_bookkeeping_is_not() -> None:
    config = resolve_config({"recipe": "burda-iwae-k5", "lr": 3e-4, "out": "elsewhere",
                             "device": "cpu", "seed": 7}, budget_epochs=100)
    followed = recipe_run(config)
    assert followed is not None and followed.overrides == {"lr": 3e-4}
    assert followed.label() == ("burda-iwae-k5 (100 of 3,280 epochs, schedule compressed; "
                                "modified: lr=0.0003)")
    assert followed.brief() == "burda-iwae-k5 (compressed 100/3280, modified)"
    # --epochs instead of --budget-epochs: a warm-up not compressed with the run is an override.
    plain = resolve_config({"recipe": "vampprior", "epochs": 20})
    assert recipe_run(plain).overrides == {"kl_warmup": 100}  # type: ignore[union-attr]
    assert recipe_run(TrainConfig()) is None


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_recipe_trains_evaluates_and_records_itself(
        name: str, tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / name
    small = ["--dataset", tiny_dataset, "--data-dir", str(tiny_dataset_dir), "--val-size", "60",
             "--device", "cpu"]
    code, out, err = _cli(["train", "--recipe", name, "--budget-epochs", "1", *small,
                           "--out", str(run)], capsys)
    assert code == 0, err
    assert f"recipe: {name} (1 of {PUBLISHED[name][3]:,} epochs, schedule compressed" in out
    assert json.loads((run / "config.json").read_text())["recipe"] == name
    recorded = json.loads((run / "provenance.json").read_text())["recipe"]
    assert recorded["name"] == name and recorded["compressed"] and not recorded["full"]
    assert set(recorded["overrides"]) == {"dataset", "val_size"}  # data_dir, out: bookkeeping
    code, out, err = _cli(["evaluate", str(run), "--nll", "--samples", "3", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["checkpoint"] == RECIPES.get(name).checkpoint  # the protocol's, by default
    assert report["recipe"]["label"] == recorded["label"]
    assert report["recipe"]["evaluation_differs"] == "K = 3"
    assert summarise(run).recipe == f"{name} (compressed 1/{PUBLISHED[name][3]}, modified)"


def test_evaluate_defaults_to_the_recipes_protocol(tiny_dataset: str, tiny_dataset_dir: Path,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from vaelab.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "ETA_AFTER_S", 0.0)  # the time-left line at once
    run = tmp_path / "run"
    assert main(["train", "--recipe", "burda-vae-k1", "--budget-epochs", "1", "--dataset",
                 tiny_dataset, "--data-dir", str(tiny_dataset_dir), "--device", "cpu",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    code, out, err = _cli(["evaluate", str(run), "--nll", "--limit", "4"], capsys)
    assert code == 0, err
    assert "K=5000 (nats)" in out and "last checkpoint" in out  # the protocol's K and checkpoint
    assert "evaluated unlike its protocol (the first 4 images)" in out
    assert "importance samples per image: K=5000 (the recipe's protocol)" in out
    assert "left at this rate" in err and "image-samples/s" in err, err
    code, out, err = _cli(["runs", str(tmp_path)], capsys)
    assert code == 0 and "burda-vae-k1 (compressed 1/3280, modified)" in out, out


def test_a_run_without_validation_keeps_the_best_training_loss(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = _cli(["train", "--recipe", "burda-vae-k1", "--budget-epochs", "2",
                           "--dataset", tiny_dataset, "--data-dir", str(tiny_dataset_dir),
                           "--batch-size", "100", "--device", "cpu", "--out", str(run)], capsys)
    assert code == 0, err
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("val_loss" not in r for r in history)  # all 600 images train, as Burda's 60,000
    best = min(r["train_loss"] for r in history)
    assert f"best training loss {best:.2f} nats" in out
    code, out, err = _cli(["evaluate", str(run), "--checkpoint", "best", "--json"], capsys)
    assert code == 0 and json.loads(out)["checkpoint"] == "best", err


def test_resuming_with_a_budget_is_refused(train_args: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *train_args]) == 0
    capsys.readouterr()
    code, _, err = _cli(["train", "--resume", str(tmp_path / "run"), "--budget-epochs", "3"],
                        capsys)
    assert code == 2 and err.count("\n") == 1 and "--budget-epochs" in err, err
    code, _, err = _cli(["train", "--resume", str(tmp_path / "run"), "--recipe", "vampprior"],
                        capsys)
    assert code == 2 and err.count("\n") == 1 and "--recipe starts a new run" in err, err


def test_vaelab_recipes_lists_them_and_shows_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["recipes"], capsys)
    assert code == 0
    for name, (*_, published) in PUBLISHED.items():
        line = next(x for x in out.splitlines() if x.startswith(name + " "))
        assert (f"{published:.2f}" if published else " - ") in line, line
    code, out, _ = _cli(["recipes", "burda-iwae-k50"], capsys)
    assert code == 0
    for words in ("published test NLL: 84.78 nats", "K = 5000", "all 10,000 test images",
                  "vaelab train --recipe burda-iwae-k50"):
        assert words in out, words
    for setting in (r"adam_eps +0\.0001", r"lr_schedule +burda", r"batch_size +20"):
        assert re.search(setting, out), setting
    code, out, _ = _cli(["recipes", "--json"], capsys)
    listed: list[dict[str, Any]] = json.loads(out)
    assert [r["name"] for r in listed] == sorted(PUBLISHED)
    code, _, err = _cli(["recipes", "burda-vae-k2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown recipe 'burda-vae-k2'" in err
