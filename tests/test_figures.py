"""Every study figure is drawn at the size it is shown: its PNG has exactly the pixel size the
figure was made with, no wider than a Markdown column, every text at least 10 px tall
(font size x DPI / 72), inside the picture and clear of every other text."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaelab.pictures.compact import export_figures
from vaelab.pictures.plots import DPI, MIN_TEXT_PX, Legibility, drawing, plot_loss_curves
from vaelab.study import figures, latent

NAMES = [str(d) for d in range(10)]
FASHION = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
# The 100-epoch study's rate (KL), distortion (BCE) and I_q per z_dim, nats.
RATE_DISTORTION = {1: (3.96, 157.99, 3.9), 2: (6.66, 133.56, 6.4), 5: (12.51, 104.16, 9.0),
                   10: (19.17, 83.91, 9.2), 20: (23.59, 76.81, 9.21)}
Z_DIMS = [1, 2, 5, 10, 20]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _rng() -> np.random.Generator:
    """Each figure's own random inputs: the same whichever tests run, in whatever order."""
    return np.random.default_rng(0)


def _images(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((n, 28, 28)).astype(np.float32)


def _history(epochs: int, offset: float) -> list[dict[str, Any]]:
    return [{"epoch": e, "train_loss": 200 / e + offset, "train_recon": 180 / e + offset,
             "train_kl": 5 + offset / 10, "val_loss": 205 / e + offset,
             "val_recon": 185 / e + offset, "val_kl": 5 + offset / 10, "seconds": 1.0}
            for e in range(1, epochs + 1)]


def _strip(n_intervals: int, rng: np.random.Generator
           ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[latent.Interval]]]:
    """Two strips whose digit maps hold many intervals, several one or two points wide."""
    z = np.linspace(-3, 3, 601)
    cuts = np.sort(rng.choice(np.arange(1, 600), size=n_intervals - 1, replace=False))
    labels = np.zeros(601, int)
    for k, cut in enumerate(cuts):
        labels[cut:] = (k + 1) % 10 if k % 4 else latent.UNCLEAR
    intervals = latent.digit_intervals(z, labels, min_run=2)
    shown = np.linspace(-3, 3, 25)
    strip_labels = np.array([latent.UNCLEAR if i % 7 == 3 else i % 10 for i in range(25)])
    return [("prior range: z in [-3.00, 3.00]", shown, _images(25, rng), strip_labels, intervals),
            ("data range: z in [-3.84, 3.95]", np.linspace(-3.84, 3.95, 25), _images(25, rng),
             strip_labels, intervals)]


def _values() -> np.ndarray:
    return np.linspace(-5, 5, 21)


# name -> a call that draws the figure into the given path from the given generator's inputs
FIGURES: dict[str, Callable[[Path, np.random.Generator], Legibility]] = {
    "reconstructions": lambda p, rng: figures.plot_reconstructions(
        p, _images(12, rng), {f"z_dim={z}": _images(12, rng) for z in Z_DIMS}),
    "elbow, one seed": lambda p, rng: figures.plot_elbow(
        p, Z_DIMS, {"test negative ELBO": (np.array([[160, 140, 117, 103, 100.4]]),
                                           [(0.025, 20, False), (0.05, 10, True),
                                            (0.1, 10, True)]),
                    "test reconstruction BCE": (np.array([[158, 134, 104, 84, 77]]),
                                                [(0.025, 20, False), (0.05, 20, False),
                                                 (0.1, 10, True)])}, floor=45.5),
    "elbow, three seeds": lambda p, rng: figures.plot_elbow(
        p, Z_DIMS, {"test negative ELBO": (160 - rng.random((3, 5)) * 60,
                                           [(0.025, 5, True), (0.05, 2, True),
                                            (0.1, 1, True)])}),
    "prior classes": lambda p, rng: figures.plot_prior_classes(
        p, Z_DIMS, {z: rng.dirichlet(np.ones(11)) for z in Z_DIMS},
        {z: rng.random(11) / 50 for z in Z_DIMS}, NAMES, 0.5),
    "active units": lambda p, rng: figures.plot_active_units(
        p, {z: [rng.random(z), rng.random(z) / 1000] for z in Z_DIMS}, 0.01),
    "strip, many intervals": lambda p, rng: figures.plot_strip_1d(p, _strip(40, rng), NAMES),
    "strip, few intervals": lambda p, rng: figures.plot_strip_1d(p, _strip(3, rng), NAMES),
    "manifold": lambda p, rng: figures.plot_manifold(
        p, _images(441, rng), _values(), _values(), "decoded z on a 21 x 21 grid over [-5, 5]²",
        box=(-2.86, 3.79, -4.13, 3.21)),
    "manifold, uneven range": lambda p, rng: figures.plot_manifold(
        p, _images(441, rng), np.linspace(-2.86, 3.79, 21), np.linspace(-4.13, 3.21, 21),
        "decoded z over the test set's latent range"),
    "manifold, quantile ticks": lambda p, rng: figures.plot_manifold(
        p, _images(441, rng), np.linspace(0.05, 0.95, 21), np.linspace(0.05, 0.95, 21),
        "decoded z at the prior's quantiles",
        ticks=([0.05, 0.25, 0.5, 0.75, 0.95],
               ["0.05\n(z -1.64)", "0.25\n(z -0.67)", "0.5\n(z +0.00)", "0.75\n(z +0.67)",
                "0.95\n(z +1.64)"]),
        labels=("prior quantile of z1", "prior quantile of z2")),
    "digit map": lambda p, rng: figures.plot_digit_map_2d(
        p, rng.integers(-1, 10, size=(121, 121)), 5.0, rng.normal(size=(2000, 2)) * 1.5,
        rng.integers(0, 10, size=2000), NAMES, (-2.86, 3.79, -4.13, 3.21)),
    "digit map, fashion names": lambda p, rng: figures.plot_digit_map_2d(
        p, rng.integers(-1, 10, size=(121, 121)), 5.0, rng.normal(size=(2000, 2)) * 1.5,
        rng.integers(0, 10, size=2000), FASHION, (-2.86, 3.79, -4.13, 3.21), "class"),
    "strip, fashion names": lambda p, rng: figures.plot_strip_1d(p, _strip(12, rng), FASHION,
                                                                 "class"),
    "prior classes, fashion names": lambda p, rng: figures.plot_prior_classes(
        p, Z_DIMS, {z: rng.dirichlet(np.ones(11)) for z in Z_DIMS}, {z: None for z in Z_DIMS},
        FASHION, 0.5),
    "rate-distortion, one seed": lambda p, rng: figures.plot_rate_distortion(
        p, [{"z_dim": z, "seed": 1, "rate": r, "distortion": d, "i_q": i}
            for z, (r, d, i) in RATE_DISTORTION.items()], 9.21, floor=45.53),
    "rate-distortion, three seeds, binary": lambda p, rng: figures.plot_rate_distortion(
        p, [{"z_dim": z, "seed": s, "rate": r + s, "distortion": d - 2 * s, "i_q": i}
            for z, (r, d, i) in RATE_DISTORTION.items() for s in (1, 2, 3)], 7.6),
    "rate-distortion, one model": lambda p, rng: figures.plot_rate_distortion(
        p, [{"z_dim": 2, "seed": 1, "rate": 6.2, "distortion": 182.6, "i_q": 5.9}], 6.91),
    "loss curves, one run": lambda p, rng: plot_loss_curves(
        {"z=20": _history(30, 0.0)}, p, title="seed, z_dim=20, mnist-sample"),
    "loss curves, one epoch": lambda p, rng: plot_loss_curves(
        {f"z_dim={z}": [_history(1, 100 / z), _history(1, 100 / z + 2)] for z in Z_DIMS}, p),
    "loss curves, a schedule": lambda p, rng: plot_loss_curves(
        {f"burda-vae-k{k}": [{**r, "lr": 1e-3 * 10 ** (-min(7, r["epoch"] // 5) / 7)}
                             for r in _history(40, k)] for k in (1, 5)}, p,
        title="vae, z_dim=50, mnist (Burda's schedule, compressed)"),
    "loss curves, seeds": lambda p, rng: plot_loss_curves(
        {f"z_dim={z}": [_history(100, 100 / z), _history(100, 100 / z + 2)] for z in Z_DIMS},
        p, title="seed on mnist, mean of 2 seeds"),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_legible_at_the_size_it_is_written(name: str, tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    found = FIGURES[name](path, _rng())
    assert png_size(path) == (found.width, found.height)
    assert found.width <= figures.WIDTH
    assert found.smallest_text_px is not None
    assert found.smallest_text_px >= MIN_TEXT_PX, found.smallest_text_px
    assert found.overlaps == [], found.overlaps
    assert found.cut_off == [], found.cut_off


def test_strip_labels_only_bounds_that_do_not_collide(tmp_path: Path) -> None:
    strips = _strip(40, _rng())
    intervals = strips[0][4]
    found = figures.plot_strip_1d(tmp_path / "s.png", strips, NAMES)
    assert found.overlaps == []
    assert len(intervals) > 20  # far more bounds than could be labelled side by side


def test_drawing_refuses_text_below_the_minimum(tmp_path: Path) -> None:
    too_small = (MIN_TEXT_PX - 1) * 72 / DPI  # points
    with pytest.raises(ValueError, match="px tall"), drawing(tmp_path / "x.png", 300, 200) as fig:
        fig.text(0.5, 0.5, "tiny", fontsize=too_small)
    assert not (tmp_path / "x.png").exists()


def test_legibility_finds_overlapping_and_cut_off_texts(tmp_path: Path) -> None:
    record: list[Legibility] = []
    with drawing(tmp_path / "x.png", 300, 200, layout=None, record=record) as fig:
        fig.text(0.4, 0.5, "first text")
        fig.text(0.42, 0.5, "second text")
        fig.text(0.98, 0.1, "beyond the edge")
    found = record[0]
    assert ("first text", "second text") in found.overlaps
    assert found.cut_off == ["beyond the edge"]
    assert not found.ok
    assert png_size(tmp_path / "x.png") == (300, 200)


def test_exported_figures_keep_their_pixel_size(tmp_path: Path) -> None:
    FIGURES["manifold"](tmp_path / "manifold_2d.png", _rng())
    FIGURES["reconstructions"](tmp_path / "reconstructions.png", _rng())
    sizes = export_figures(tmp_path, tmp_path / "out", ["manifold_2d.png", "reconstructions.png"])
    assert set(sizes) == {"manifold_2d.png", "reconstructions.png"}
    for name in sizes:
        assert png_size(tmp_path / "out" / name) == png_size(tmp_path / name)
