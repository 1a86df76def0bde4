"""The report document on constructed results: sections, self-contained HTML showing every
figure at its pixel size, the Markdown twin, mean ± sd tables, and every generated sentence in
its section."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_conclusions import results_from, study
from vaelab.pictures.png import save_grid
from vaelab.study.analysis import figure_names
from vaelab.study.conclusions import findings
from vaelab.study.config import StudyConfig
from vaelab.study.report import SECTIONS, build_document, png_size, render_html, render_markdown

Z_DIMS = (1, 2, 5, 10, 20)


def test_document_has_every_section_and_figure_in_order() -> None:
    doc = build_document(study())
    headings = [payload for kind, payload in doc.blocks if kind == "h2"]
    assert headings == list(SECTIONS)
    assert doc.figures() == figure_names(Z_DIMS)  # every figure analysis writes, once


def test_method_states_the_reparameterisation_kl_and_abstention() -> None:
    text = render_markdown(build_document(study()))
    assert "z = mu + exp(logvar / 2) * eps" in text
    assert "KL = -1/2 * sum_u (1 + logvar_u - mu_u^2 - exp(logvar_u))" in text
    assert "99.12 %" in text  # the classifier's measured accuracy
    assert "'seed' model: the study's network: 784-256-1024-(mu, logvar) | z-784-784" in text
    assert "probability of at least 0.5; otherwise it is 'unclear'" in text


def _figures(folder: Path, names: list[str]) -> None:
    """Grids of different sizes, so that each figure's displayed size is its own."""
    folder.mkdir()
    for i, name in enumerate(names):
        save_grid(folder / name, np.full((1 + i % 4, 28, 28), i / len(names), np.float32),
                  ncol=1 + i % 3)


def test_html_is_self_contained_shows_figures_at_pixel_size_and_matches_markdown(
        tmp_path: Path) -> None:
    doc = build_document(study(seeds=2))
    _figures(tmp_path / "figures", doc.figures())
    page = render_html(doc, tmp_path / "figures")
    markdown = render_markdown(doc)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == len(doc.figures())
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "max-width:none" in page  # no stylesheet rule scales an image down
    for name in doc.figures():
        width, height = png_size((tmp_path / "figures" / name).read_bytes())
        assert re.search(rf'<figure id="{re.escape(name)}"><img alt="[^"]*" '
                         rf'width="{width}" height="{height}" src=', page), name
        assert f"(figures/{name})" in markdown
    for kind, payload in doc.blocks:  # the same sentences in both files
        if kind == "p":
            assert html.escape(payload) in page and payload in markdown
        if kind == "list":
            for sentence in payload:
                assert html.escape(sentence) in page and f"- {sentence}" in markdown


def test_one_seed_tables_have_plain_numbers_and_the_bce_floor() -> None:
    markdown = render_markdown(build_document(study()))
    # z_dim 10: neg. ELBO, BCE, BCE above the 45.00 floor, MSE, KL, active units
    # ... then I_q and the marginal KL, which add up to the KL
    assert "| 10 | 103.08 | 83.91 | 38.91 | 0.0168 | 19.17 | 9.20 | 9.97 | 10 / 10 |" in markdown
    assert "| 20 | 100.40 | 76.81 | 31.81 | 0.0154 | 23.59 | 9.21 | 14.38 | 16 / 20 |" in markdown
    assert "±" not in markdown.split("## z_dim sweep")[1]  # (the Method's refusals have one)
    assert "the variation between seeds is not measured" in markdown
    assert "Each seed's own numbers" not in markdown


def test_several_seeds_give_mean_and_sd_and_per_seed_tables() -> None:
    markdown = render_markdown(build_document(study(seeds=2)))
    # BCE 83.61 and 84.21 (noise 0.3): mean 83.91, sd 0.42; KL moves with it.
    assert "| 10 | 103.08 ± 0.85 | 83.91 ± 0.42 | 38.91 ± 0.42 |" in markdown
    assert "| 20 | 100.40 ± 0.85 | 76.81 ± 0.42 |" in markdown
    assert "16.0 / 20 (16, 16)" in markdown
    assert "Each seed's own numbers" in markdown
    assert "| 10 | 2 | 103.68 | 84.21 | 19.47 | 9.23 | 10 / 10 | 12.30 |" in markdown
    assert "| test negative ELBO, seed 2 |" in markdown
    assert "shaded band spans the lowest to the highest seed" in markdown


def test_elbow_table_gives_every_tolerance_on_both_measures() -> None:
    markdown = render_markdown(build_document(study()))
    assert "| measure | 2.5 % | 5 % | 10 % |" in markdown
    assert "| test negative ELBO | not reached (20) | 10 | 10 |" in markdown
    assert "| test reconstruction BCE | not reached (20) | not reached (20) | 10 |" in markdown


def test_every_generated_sentence_appears_once_in_its_section() -> None:
    results = study(seeds=2)
    doc = build_document(results)
    section, where = "", {}
    for kind, payload in doc.blocks:
        if kind == "h2":
            section = payload
        if kind == "list":
            for sentence in payload:
                assert sentence not in where, sentence
                where[sentence] = section
    found = findings(results)
    assert {f.sentence: f.section for f in found} == where


def test_sections_without_1d_or_2d_models_say_how_to_get_them() -> None:
    results = results_from([r for r in study()["runs"] if r["z_dim"] > 2])
    text = render_markdown(build_document(results))
    assert "add 1 to --z-dims" in text and "add 2 to --z-dims" in text
    assert "strip_1d.png" not in text and "digit_map_2d.png" not in text


def test_2d_section_states_the_share_beyond_the_test_range_naming_its_grid() -> None:
    text = render_markdown(build_document(study()))
    assert ("51.0 % of the points of the 121 x 121 class map over [-5, 5]² lie outside the "
            "test set's latent range [-2.86, 3.79] x [-4.13, 3.21], where no test image's "
            "latent mean lies; that part of the plane holds 0.3 % of the prior's mass") in text


def test_scores_stand_beside_their_references_and_the_classifier_beside_its_refusals() -> None:
    text = render_markdown(build_document(study()))
    assert "| reference | images | Fréchet distance | precision | recall |" in text
    assert ("| real images of the training file (not the test set) | 10,000 | 4.73 | 0.857 | "
            "0.866 |") in text
    assert "| uniform noise | 10,000 | 2288.38 | 0.000 | 0.000 |" in text
    assert "| blends of two test images of different classes | 89.7 % ± 0.3 % |" in text
    assert "| clean test images | 1.2 % ± 0.1 % |" in text
    assert "(figures/rate_distortion.png)" in text
    # Every noise figure with its source.
    assert "| source | sd of the last 10 epochs' val_loss around its trend |" in text


def test_an_unlabelled_study_reports_without_the_classifier() -> None:
    results = study(labelled=False)
    doc = build_document(results)
    assert doc.figures() == figure_names(Z_DIMS, labelled=False)
    text = render_markdown(doc)
    assert "no classifier" in text and "Fréchet distance |" not in text
    assert "| reference |" not in text and "refused" not in text
    assert "pairs of test images, one pair per row" in text


def test_other_classes_are_named_in_the_tables() -> None:
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"]
    text = render_markdown(build_document(study(class_names=names, noun="class")))
    assert "| z_dim | T-shirt | Trouser |" in text and "| range | class | from z | to z |" in text
    assert "the first test image of each class: T-shirt to Shirt, Trouser to Sneaker" in text


@pytest.mark.parametrize("bad", [{"z_dims": (0, 2)}, {"z_dims": (2, 2)},
                                 {"quantiles": (0.5, 0.2)}, {"traverse_range": (3, -3)},
                                 {"epochs": 0}, {"min_confidence": 1.5}])
def test_study_config_rejects_bad_settings(bad: dict[str, Any]) -> None:
    from vaelab.errors import VaelabError

    with pytest.raises(VaelabError):
        StudyConfig.from_dict(bad)
