"""The study's matplotlib figures (Agg), each a fixed size so a report lays out predictably.

Every function draws from measured arrays and writes one PNG; nothing here trains or decodes.
A figure of ``figsize`` inches is saved at ``DPI`` without tight cropping, so its pixel size is
exactly figsize x DPI.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaelab.pictures.compact import compact_png
from vaelab.pictures.png import make_grid
from vaelab.runs.atomic import atomic_write_bytes
from vaelab.study.latent import Interval

__all__ = [
    "DPI",
    "plot_active_units",
    "plot_digit_map_2d",
    "plot_manifold",
    "plot_prior_classes",
    "plot_recon_error",
    "plot_reconstructions",
    "plot_scatter",
    "plot_strip_1d",
]

DPI = 100
DIGIT_COLOURS = "tab10"


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    atomic_write_bytes(path, compact_png(buffer.getvalue()))


def _colour(plt: Any, label: int) -> Any:
    return plt.get_cmap(DIGIT_COLOURS)(int(label) % 10)


def plot_reconstructions(path: str | os.PathLike[str], originals: np.ndarray,
                         recons: dict[str, np.ndarray]) -> None:
    """Originals on the top row, then one row of reconstructions per model, labelled."""
    rows = [("original", originals), *recons.items()]
    n = len(originals)
    plt, fig = _figure(11, 0.7 * len(rows) + 0.3)
    ax = fig.add_subplot()
    grid = make_grid(np.concatenate([r for _, r in rows]), ncol=n, padding=2)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([2 + 30 * i + 14 for i in range(len(rows))], [name for name, _ in rows])
    ax.set_xticks([])
    _save(plt, fig, path)


def plot_recon_error(path: str | os.PathLike[str], z_dims: Sequence[int],
                     measures: dict[str, Sequence[float]], elbows: dict[str, int]) -> None:
    """One panel per error measure against z_dim (log axis), the elbow marked in each."""
    plt, fig = _figure(10, 3.6)
    axes = fig.subplots(1, len(measures))
    for ax, (name, values) in zip(np.atleast_1d(axes), measures.items(), strict=True):
        ax.plot(z_dims, values, "o-", color="C0")
        at = elbows[name]
        still = len(z_dims) > 1 and at == max(z_dims)  # the rule found no elbow in the sweep
        ax.axvline(at, color="C3", linestyle="--",
                   label=f"still improving at z_dim = {at}" if still else f"elbow: z_dim = {at}")
        ax.plot([at], [values[list(z_dims).index(at)]], "o", color="C3", markersize=10,
                fillstyle="none")
        ax.set_xscale("log")
        ax.set_xticks(list(z_dims), [str(z) for z in z_dims])
        ax.minorticks_off()
        ax.set_xlabel("z_dim")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(plt, fig, path)


def plot_strip_1d(path: str | os.PathLike[str],
                  strips: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[Interval]]]
                  ) -> None:
    """For each range: decoded images along z labelled by the classifier, and the digit map.

    ``strips`` holds (title, z of the images, images, their labels, intervals of the map).
    """
    plt, fig = _figure(13, 2.6 * len(strips))
    gs = fig.add_gridspec(2 * len(strips), 1, height_ratios=[3, 1] * len(strips))
    for k, (title, z, images, labels, intervals) in enumerate(strips):
        ax = fig.add_subplot(gs[2 * k])
        n = len(images)
        ax.imshow(np.concatenate(list(images), axis=1), cmap="gray", vmin=0, vmax=1,
                  extent=(0, n, 0, 1), aspect="auto", interpolation="nearest")
        ax.set_xticks(np.arange(n) + 0.5, [f"{v:.2f}" for v in z], fontsize=6, rotation=90)
        ax.set_yticks([])
        for i, label in enumerate(labels):
            ax.text(i + 0.5, 1.04, str(label), ha="center", va="bottom", fontsize=9,
                    color=_colour(plt, label), transform=ax.transData, fontweight="bold")
        ax.set_title(f"{title}: decoded images (classifier's digit above each)", fontsize=10,
                     pad=14)
        bar = fig.add_subplot(gs[2 * k + 1])
        for part in intervals:
            bar.axvspan(part.start, part.end, color=_colour(plt, part.label), alpha=0.85)
            if part.width > 0.03 * (intervals[-1].end - intervals[0].start):
                bar.text((part.start + part.end) / 2, 0.5, str(part.label), ha="center",
                         va="center", fontsize=10, color="white", fontweight="bold")
        bounds = [intervals[0].start] + [p.end for p in intervals]
        bar.set_xlim(intervals[0].start, intervals[-1].end)
        bar.set_xticks(bounds, [f"{b:.2f}" for b in bounds], fontsize=6, rotation=90)
        bar.set_yticks([])
        bar.set_xlabel("z (digit map: which digit the decoder draws on each interval)",
                       fontsize=8)
    _save(plt, fig, path)


def plot_manifold(path: str | os.PathLike[str], images: np.ndarray, values: np.ndarray,
                  title: str) -> None:
    """An n x n grid of decoded images placed at their (z1, z2), with axis ticks."""
    n = len(values)
    plt, fig = _figure(8, 8)
    ax = fig.add_subplot()
    grid = make_grid(images, ncol=n, padding=0)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, extent=(0, n, 0, n), interpolation="nearest")
    ticks = list(range(0, n, max(1, n // 10)))
    ax.set_xticks([i + 0.5 for i in ticks], [f"{values[i]:.2f}" for i in ticks], rotation=90)
    ax.set_yticks([i + 0.5 for i in ticks], [f"{values[i]:.2f}" for i in ticks])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    _save(plt, fig, path)


def plot_scatter(path: str | os.PathLike[str], means: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str]) -> None:
    """Posterior means of the test set in the plane, one colour per digit."""
    plt, fig = _figure(7, 6)
    ax = fig.add_subplot()
    for label in range(len(class_names)):
        chosen = labels == label
        ax.scatter(means[chosen, 0], means[chosen, 1], s=2, alpha=0.6,
                   color=_colour(plt, label), label=class_names[label])
    ax.set_xlabel("z1 (posterior mean)")
    ax.set_ylabel("z2 (posterior mean)")
    ax.set_title("test-set latent means, coloured by true digit")
    ax.legend(markerscale=6, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.grid(alpha=0.3)
    _save(plt, fig, path)


def plot_digit_map_2d(path: str | os.PathLike[str], labels: np.ndarray, confidence: np.ndarray,
                      limit: float, class_names: Sequence[str]) -> None:
    """The classifier's digit at each point of the plane; paler where it is less sure."""
    from matplotlib.patches import Patch

    plt, fig = _figure(7, 6)
    ax = fig.add_subplot()
    colours = [_colour(plt, d) for d in range(10)]
    rgb = np.array([colours[d][:3] for d in labels.ravel()]).reshape(*labels.shape, 3)
    rgb = 1 - (1 - rgb) * np.clip(confidence, 0, 1)[..., None]  # fade towards white
    ax.imshow(rgb, extent=(-limit, limit, -limit, limit), interpolation="nearest")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title("digit the classifier sees in the decoding of each z")
    shown = sorted(set(labels.ravel().tolist()))
    ax.legend(handles=[Patch(color=colours[d], label=class_names[d]) for d in shown],
              fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    _save(plt, fig, path)


def plot_prior_classes(path: str | os.PathLike[str], z_dims: Sequence[int],
                       counts: dict[int, np.ndarray], confidence: dict[int, float],
                       class_names: Sequence[str]) -> None:
    """Share of each digit among decoded prior samples, per z_dim, and the mean confidence."""
    plt, fig = _figure(10, 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(z_dims)
    x = np.arange(len(class_names))
    for i, z_dim in enumerate(z_dims):
        share = counts[z_dim] / max(counts[z_dim].sum(), 1)
        ax.bar(x + (i - (len(z_dims) - 1) / 2) * width, share, width,
               label=f"z_dim={z_dim} (confidence {confidence[z_dim]:.2f})")
    ax.axhline(0.1, color="grey", linestyle=":", label="uniform (0.1)")
    ax.set_xticks(x, list(class_names))
    ax.set_xlabel("digit the classifier sees")
    ax.set_ylabel("share of prior samples")
    ax.legend(fontsize=7, ncols=2)
    ax.grid(alpha=0.3, axis="y")
    _save(plt, fig, path)


def plot_active_units(path: str | os.PathLike[str], variances: dict[int, np.ndarray],
                      threshold: float) -> None:
    """Each unit's activity Cov_x(E_q[z_u | x]), sorted, per z_dim; the threshold dotted."""
    plt, fig = _figure(10, 3.6)
    ax = fig.add_subplot()
    for z_dim, values in variances.items():
        ranked = np.sort(values)[::-1]
        ax.plot(np.arange(1, len(ranked) + 1), np.maximum(ranked, 1e-6), "o-", markersize=3,
                label=f"z_dim={z_dim}")
    ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("unit (sorted by activity)")
    ax.set_ylabel("Cov_x(E_q[z_u | x])")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(plt, fig, path)
