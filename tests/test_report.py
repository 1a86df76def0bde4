"""The report document on constructed results: sections, self-contained HTML, Markdown twin,
and conclusions that follow the numbers."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaelab.pictures.png import save_grid
from vaelab.study.analysis import figure_names
from vaelab.study.conclusions import conclusions
from vaelab.study.config import StudyConfig
from vaelab.study.report import SECTIONS, build_document, render_html, render_markdown

Z_DIMS = (1, 2, 5, 10, 20)
BCE = {1: 140.0, 2: 125.0, 5: 95.0, 10: 80.0, 20: 77.0}


def _interval(label: int, start: float, end: float) -> dict[str, Any]:
    return {"label": label, "start": start, "end": end, "confidence": 0.9}


def _results() -> dict[str, Any]:
    runs = {}
    for z in Z_DIMS:
        counts = [0] * 10
        counts[z % 10] = 6000
        counts[(z + 3) % 10] = 4000
        runs[str(z)] = {
            "z_dim": z, "run_dir": f"study/z{z}", "epochs": 100, "best_epoch": 97,
            "train_seconds": 100.0 + z, "final": {"train_loss": BCE[z] + 5, "val_loss": BCE[z] + 6},
            "test": {"n": 10000, "neg_elbo": BCE[z] + 3 + z, "recon_bce": BCE[z], "kl": 3.0 + z,
                     "mse": BCE[z] / 5000},
            "active_units": min(z, 9), "unit_activity": [1.0] * z, "prior_counts": counts,
            "prior_confidence": 0.9 + z / 1000, "prior_digits_seen": 2,
        }
    return {
        "config": StudyConfig().to_dict(),
        "model_summary": "the study's network: 784-256-1024-(mu, logvar) | z-784-784, ReLU",
        "classifier": {"dataset": "mnist", "epochs": 3, "seed": 0, "n_train": 60000,
                       "n_test": 10000, "test_accuracy": 0.9912, "seconds": 80.0,
                       "class_names": [str(d) for d in range(10)]},
        "class_names": [str(d) for d in range(10)],
        "n_test": 10000,
        "runs": runs,
        "elbow": {"bce": 10, "mse": 10, "tolerance": 0.05},
        "one_d": {
            "prior range": {"low": -3.0, "high": 3.0, "strip_labels": [1, 7], "digits": [1, 7, 8],
                            "intervals": [_interval(1, -3.0, -0.4), _interval(7, -0.4, 0.75),
                                          _interval(8, 0.75, 3.0)]},
            "data range": {"low": -2.5, "high": 2.6, "strip_labels": [1], "digits": [1],
                           "intervals": [_interval(1, -2.5, 2.6)]},
        },
        "two_d": {"limit": 5.0, "grid_size": 20, "map_points": 121,
                  "area_share": [0.1, 0.3, 0.0, 0.2, 0.0, 0.0, 0.2, 0.2, 0.0, 0.0],
                  "digits": [0, 1, 3, 6, 7], "mean_confidence": 0.88,
                  "latent_extent": [-3, 3, -3, 3]},
    }


def test_document_has_every_section_in_order() -> None:
    doc = build_document(_results())
    headings = [payload for kind, payload in doc.blocks if kind == "h2"]
    assert headings == list(SECTIONS)
    assert len(doc.figures()) == len(set(doc.figures()))
    assert sorted(doc.figures()) == sorted(figure_names(Z_DIMS))  # every figure analysis writes


def test_method_states_the_reparameterisation_and_kl() -> None:
    text = render_markdown(build_document(_results()))
    assert "z = mu + exp(logvar / 2) * eps" in text
    assert "KL = -1/2 * sum_u (1 + logvar_u - mu_u^2 - exp(logvar_u))" in text
    assert "99.12 %" in text  # the classifier's measured accuracy
    assert "'seed' model: the study's network: 784-256-1024-(mu, logvar) | z-784-784" in text


def _figures(folder: Path, names: list[str]) -> None:
    folder.mkdir()
    for i, name in enumerate(names):
        save_grid(folder / name, np.full((2, 28, 28), i / len(names), np.float32), ncol=2)


def test_html_is_self_contained_and_matches_markdown(tmp_path: Path) -> None:
    doc = build_document(_results())
    _figures(tmp_path / "figures", doc.figures())
    page = render_html(doc, tmp_path / "figures")
    markdown = render_markdown(doc)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == len(doc.figures())
    assert not re.search(r'(src|href)="(?!data:)', page)
    # The same sentences in both files.
    for kind, payload in doc.blocks:
        if kind == "p":
            assert html.escape(payload) in page and payload in markdown
        if kind == "list":
            for sentence in payload:
                assert html.escape(sentence) in page and f"- {sentence}" in markdown
    for name in doc.figures():
        assert f"(figures/{name})" in markdown
    assert "| 10 | 93.00 | 80.00 | 0.0160 | 13.00 | 9 / 10 |" in markdown


def test_conclusions_follow_the_numbers() -> None:
    results = _results()
    text = " ".join(conclusions(results))
    assert "stops improving at z_dim = 10" in text
    assert "from 140.00 nats per image at z_dim=1 to 80.00 at z_dim=10" in text
    assert "The lowest test negative ELBO is 93.00 nats per image, at z_dim = 10" in text
    assert "leaves 11 unit(s) unused" in text
    assert "1 on [-3.00, -0.40], 7 on [-0.40, 0.75], 8 on [0.75, 3.00]" in text
    assert "decodes to 5 of 10 digits" in text
    assert "most confident about the samples of z_dim=20 (mean probability 0.920) and least " \
        "about those of z_dim=1 (0.901)" in text
    assert "this shorter run" not in text  # 100 epochs on mnist: the study's own setting

    changed = copy.deepcopy(results)
    changed["elbow"] = {"bce": 20, "mse": 5, "tolerance": 0.05}
    changed["config"]["train"]["epochs"] = 3
    for z in Z_DIMS:
        changed["runs"][str(z)]["active_units"] = z
    text = " ".join(conclusions(changed))
    assert "still improving at the largest z_dim tried (20" in text
    assert "Measured as pixel MSE instead, the elbow falls at z_dim = 5" in text
    assert "Every latent unit is active" in text
    assert "trained 3 epoch(s)" in text


def test_sections_without_1d_or_2d_models_say_how_to_get_them() -> None:
    results = _results()
    del results["one_d"], results["two_d"]
    text = render_markdown(build_document(results))
    assert "add 1 to --z-dims" in text and "add 2 to --z-dims" in text
    assert "strip_1d.png" not in text


@pytest.mark.parametrize("bad", [{"z_dims": (0, 2)}, {"z_dims": (2, 2)},
                                 {"quantiles": (0.5, 0.2)}, {"traverse_range": (3, -3)},
                                 {"epochs": 0}])
def test_study_config_rejects_bad_settings(bad: dict[str, Any]) -> None:
    from vaelab.errors import VaelabError

    with pytest.raises(VaelabError):
        StudyConfig.from_dict(bad)
