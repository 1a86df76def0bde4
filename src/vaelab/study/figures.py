"""The study's matplotlib figures, each drawn at the pixel size the report shows it.

Every function draws from measured arrays and writes one PNG through
``vaelab.pictures.plots.drawing`` (exact pixel size, every text at least 10 px tall and checked
for overlaps); each returns what that check found. Figures are at most ``WIDTH`` pixels wide, so
a Markdown page or the HTML report shows them at 100 %. Pictures of decoded digits are placed
so that one image pixel is a whole number of screen pixels. Nothing here trains or decodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaelab.pictures.plots import Legibility, drawing
from vaelab.pictures.png import make_grid
from vaelab.study.latent import UNCLEAR, Interval

__all__ = [
    "DIGIT_COLOURS",
    "UNCLEAR_COLOUR",
    "WIDTH",
    "digit_colour",
    "plot_active_units",
    "plot_digit_map_2d",
    "plot_elbow",
    "plot_manifold",
    "plot_prior_classes",
    "plot_rate_distortion",
    "plot_reconstructions",
    "plot_strip_1d",
]

WIDTH = 820  # pixels: fits a GitHub Markdown column and the report's page without scaling
# tab10 with its grey (digit 7) replaced by near-black, so that grey means only "unclear".
DIGIT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#222222", "#bcbd22", "#17becf")
UNCLEAR_COLOUR = "#c8c8c8"
_CHAR_PX = 7.6  # width of one tick-label character at the figures' tick size, rounded up
_BOLD_CHAR_PX = 8.6  # width of one bold character at the body size, rounded up
_LEGEND_ENTRY_PX = 30  # a legend entry's swatch, padding and column spacing, beside its text
_LEGEND_ROW_PX = 20  # height of one row of legend entries
_IMAGE = 28  # pixels per decoded image side

Path = str | os.PathLike[str]


def digit_colour(label: int) -> str:
    return UNCLEAR_COLOUR if label == UNCLEAR else DIGIT_COLOURS[int(label) % 10]


def _name(label: int, class_names: Sequence[str]) -> str:
    return "unclear" if label == UNCLEAR else class_names[label]


def _axes_px(fig: Any, left: float, bottom: float, width: float, height: float,
             **kwargs: Any) -> Any:
    """Axes placed in pixels from the figure's lower-left corner."""
    w, h = fig.bbox.width, fig.bbox.height
    return fig.add_axes((left / w, bottom / h, width / w, height / h), **kwargs)


def _text_px(fig: Any, x: float, y: float, text: str, **kwargs: Any) -> Any:
    """A figure text placed in pixels from the figure's lower-left corner."""
    return fig.text(x / fig.bbox.width, y / fig.bbox.height, text, **kwargs)


def _record(record: list[Legibility]) -> Legibility:
    return record[-1]


def plot_reconstructions(path: Path, originals: np.ndarray, recons: dict[str, np.ndarray],
                         scale: int = 2) -> Legibility:
    """Originals on the top row, then one row of reconstructions per model, labelled."""
    rows = [("original", originals), *recons.items()]
    grid = make_grid(np.concatenate([r for _, r in rows]), ncol=len(originals), padding=2,
                     scale=scale)
    left, margin = 80, 8
    height = grid.shape[0] + 2 * margin
    record: list[Legibility] = []
    with drawing(path, max(WIDTH, left + grid.shape[1] + margin), height, layout=None,
                 record=record) as fig:
        ax = _axes_px(fig, left, margin, grid.shape[1], grid.shape[0])
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                  extent=(0, grid.shape[1], grid.shape[0], 0))
        cell = (_IMAGE + 2) * scale
        ax.set_yticks([2 * scale + cell * i + _IMAGE * scale / 2 for i in range(len(rows))],
                      [name for name, _ in rows])
        ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    return _record(record)


def _log_z_axis(ax: Any, z_dims: Sequence[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(z_dims), [str(z) for z in z_dims])
    ax.minorticks_off()
    ax.set_xlabel("z_dim")
    ax.grid(alpha=0.3)


def plot_elbow(path: Path, z_dims: Sequence[int],
               measures: dict[str, tuple[np.ndarray, list[tuple[float, int, bool]]]],
               floor: float | None = None) -> Legibility:
    """One panel per measure against z_dim (log axis) with the elbow of each tolerance.

    ``measures`` maps a panel title to (values (n_seeds, n_z_dims), [(tolerance, elbow z_dim,
    reached)]). With several seeds each seed is a grey dot and the line is the mean with
    error bars of one standard deviation. ``floor`` draws the BCE floor on panels whose title
    mentions BCE.
    """
    record: list[Legibility] = []
    with drawing(path, WIDTH, 380, record=record) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(measures)))
        for ax, (name, (values, found)) in zip(axes, measures.items(), strict=True):
            values = np.atleast_2d(np.asarray(values, dtype=np.float64))
            mean = values.mean(0)
            if len(values) > 1:
                for k, row in enumerate(values):
                    ax.plot(z_dims, row, "o", color="grey", markersize=3, alpha=0.7,
                            label="single seeds" if k == 0 else None)
                ax.errorbar(z_dims, mean, yerr=values.std(0, ddof=1), fmt="o-", color="C0",
                            capsize=3, label=f"mean ± sd over {len(values)} seeds")
            else:
                ax.plot(z_dims, mean, "o-", color="C0", label="measured (one seed)")
            groups: dict[tuple[int, bool], list[float]] = {}
            for tolerance, at, reached in found:
                groups.setdefault((at, reached), []).append(tolerance)
            for k, ((at, reached), tolerances) in enumerate(groups.items()):
                pcts = ", ".join(f"{100 * t:g} %" for t in tolerances)
                label = (f"{pcts}: elbow at {at}" if reached
                         else f"{pcts}: not reached by {at}")
                ax.axvline(at, color="C3", linestyle=("--", ":", "-.")[k % 3], label=label)
            if floor is not None and "BCE" in name:
                ax.axhline(floor, color="grey", linestyle=":",
                           label=f"BCE floor {floor:.1f} (pixel entropy)")
            _log_z_axis(ax, z_dims)
            ax.set_title(name)
            ax.set_ylabel("nats per image")
            ax.legend(loc="best")
    return _record(record)


def _round_step(span: float) -> float:
    """A round spacing giving about five lines over ``span``: 1, 2 or 5 times a power of 10."""
    raw = max(span, 1e-9) / 5
    power = 10.0 ** np.floor(np.log10(raw))
    return float(min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=raw))


def plot_rate_distortion(path: Path, points: Sequence[dict[str, Any]], ceiling: float,
                         floor: float | None = None) -> Legibility:
    """Rate against distortion (Alemi et al. 2018): each model (and seed) a point.

    ``points`` hold z_dim, rate (the KL term), distortion (the reconstruction BCE) and i_q, in
    nats; hollow markers put I_q on the same row, so the gap to the filled one is the marginal
    KL. Grey dashed lines join equal negative ELBO (rate + distortion); ``ceiling`` (log N) is
    the most I_q can measure; ``floor`` the BCE floor of grey-level images.
    """
    record: list[Legibility] = []
    z_dims = sorted({int(p["z_dim"]) for p in points})
    rates = [float(p["rate"]) for p in points]
    distortions = [float(p["distortion"]) for p in points]
    x_hi = max([*rates, ceiling]) * 1.08 + 0.5
    y_lo = min([*distortions, *([floor] if floor is not None else [])])
    y_hi = max(distortions)
    pad = 0.08 * max(y_hi - y_lo, 1.0)
    y_lim = (y_lo - pad, y_hi + pad)
    with drawing(path, WIDTH, 440, record=record) as fig:
        ax = fig.add_subplot()
        elbos = [r + d for r, d in zip(rates, distortions, strict=True)]
        top = y_lim[1] + x_hi  # the highest level whose line still crosses the axes
        # Spaced by the models' spread, but never more than about twenty lines in view (one
        # point, or points on one level, have no spread at all).
        step = _round_step(max(max(elbos) - min(elbos), (top - y_lim[0]) / 4))
        level = np.floor(y_lim[0] / step) * step
        while level <= top:
            ax.plot([0, x_hi], [level, level - x_hi], color="grey", linestyle="--",
                    linewidth=0.8, alpha=0.6)
            level += step
        ax.plot([], [], color="grey", linestyle="--", linewidth=0.8,
                label=f"equal negative ELBO, every {step:g} nats")
        for i, z_dim in enumerate(z_dims):
            chosen = [p for p in points if int(p["z_dim"]) == z_dim]
            colour = f"C{i % 10}"
            ax.plot([p["rate"] for p in chosen], [p["distortion"] for p in chosen], "o",
                    color=colour, label=f"z_dim={z_dim}")
            ax.plot([p["i_q"] for p in chosen], [p["distortion"] for p in chosen], "o",
                    markerfacecolor="none", color=colour)
        ax.plot([], [], "o", markerfacecolor="none", color="black", label="I_q at that BCE")
        ax.axvline(ceiling, color="black", linestyle=":",
                   label=f"log N = {ceiling:.2f}: most I_q can measure")
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle=":",
                       label=f"BCE floor {floor:.1f} (pixel entropy)")
        ax.set_xlim(0, x_hi)
        ax.set_ylim(*y_lim)
        ax.set_xlabel("rate: the KL term (filled) and I_q(x; z) (hollow), nats per image")
        ax.set_ylabel("distortion: reconstruction BCE, nats")
        ax.grid(alpha=0.3)
        fig.legend(loc="outside right upper", frameon=False)
    return _record(record)


def plot_prior_classes(path: Path, z_dims: Sequence[int], shares: dict[int, np.ndarray],
                       spread: dict[int, np.ndarray | None], class_names: Sequence[str],
                       min_confidence: float) -> Legibility:
    """Share of decoded prior samples the classifier calls each digit, and unclear, per z_dim.

    ``shares[z]`` holds n_classes + 1 shares (the last: unclear); ``spread[z]`` their standard
    deviation across seeds, drawn as error bars, or None for one seed.
    """
    record: list[Legibility] = []
    with drawing(path, WIDTH, 370, record=record) as fig:
        ax = fig.add_subplot()
        width = 0.8 / len(z_dims)
        names = [*class_names, "unclear"]
        x = np.arange(len(names))
        for i, z_dim in enumerate(z_dims):
            error = spread.get(z_dim)
            ax.bar(x + (i - (len(z_dims) - 1) / 2) * width, shares[z_dim], width,
                   yerr=error, capsize=2 if error is not None else 0, color=f"C{i % 10}",
                   label=f"z_dim={z_dim}")
        ax.set_xticks(x, names)
        ax.set_xlabel("what the classifier calls the decoded sample (probability ≥ "
                      f"{min_confidence:g})")
        ax.set_ylabel("share of prior samples")
        fig.legend(loc="outside lower center", ncols=min(len(z_dims), 6), frameon=False)
        ax.grid(alpha=0.3, axis="y")
    return _record(record)


def plot_active_units(path: Path, variances: dict[int, list[np.ndarray]],
                      threshold: float) -> Legibility:
    """Each unit's activity Cov_x(E_q[z_u | x]), sorted, per z_dim (one line per seed)."""
    from matplotlib.ticker import MaxNLocator

    record: list[Legibility] = []
    with drawing(path, WIDTH, 370, record=record) as fig:
        ax = fig.add_subplot()
        for i, (z_dim, per_seed) in enumerate(variances.items()):
            for k, values in enumerate(per_seed):
                ranked = np.sort(np.asarray(values))[::-1]
                ax.plot(np.arange(1, len(ranked) + 1), np.maximum(ranked, 1e-6), "o-",
                        markersize=3, color=f"C{i % 10}", alpha=1.0 if k == 0 else 0.5,
                        label=f"z_dim={z_dim}" if k == 0 else None)
        ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yscale("log")
        ax.set_xlabel("unit, sorted by activity" + (" (one line per seed)" if any(
            len(v) > 1 for v in variances.values()) else ""))
        ax.set_ylabel("Cov_x(E_q[z_u | x])")
        fig.legend(loc="outside lower center", ncols=min(len(variances) + 1, 6), frameon=False)
        ax.grid(alpha=0.3)
    return _record(record)


def _spaced(positions: Sequence[float], widths: Sequence[float], gap: float = 8.0) -> list[int]:
    """Indices of labels to keep so that none overlaps: first and last always, then greedily
    every label whose centre is far enough from the last kept one and from the final one."""
    n = len(positions)
    if n <= 2:
        return list(range(n))

    def apart(i: int, j: int) -> bool:
        return abs(positions[i] - positions[j]) >= (widths[i] + widths[j]) / 2 + gap

    kept = [0]
    for i in range(1, n - 1):
        if apart(i, kept[-1]) and apart(i, n - 1):
            kept.append(i)
    if apart(n - 1, kept[-1]):
        kept.append(n - 1)
    return kept


def plot_strip_1d(path: Path,
                  strips: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[Interval]]],
                  class_names: Sequence[str], noun: str = "digit") -> Legibility:
    """For each range: decoded images along z with the classifier's class above each, and the
    class map beneath (grey: unclear), its bounds labelled where they do not collide; ``noun``
    names a class in the axis text ("digit" for MNIST).

    ``strips`` holds (title, z of the images, images, their labels, intervals of the map).
    """
    n = max(len(s[2]) for s in strips)
    span = n * _IMAGE  # one image pixel per screen pixel
    left = (WIDTH - span) // 2
    # A label wider than an image (a class name, not a digit) stands upright above it, and the
    # strip grows by its length.
    longest = max([1, *(len(name) for name in class_names)])
    upright = longest * _CHAR_PX > _IMAGE - 2
    label_px = round(longest * _BOLD_CHAR_PX) + 6 if upright else 16
    block = 196 + label_px - 16
    height = block * len(strips) + 8
    record: list[Legibility] = []
    with drawing(path, WIDTH, height, layout=None, record=record) as fig:
        for k, (title, z, images, labels, intervals) in enumerate(strips):
            top = height - 8 - k * block
            _text_px(fig, left, top, title, va="top", ha="left", fontsize=10,
                     fontweight="bold")
            image_bottom = top - 28 - label_px - _IMAGE
            ax = _axes_px(fig, left, image_bottom, span, _IMAGE)
            ax.imshow(np.concatenate(list(images), axis=1), cmap="gray", vmin=0, vmax=1,
                      extent=(0, len(images), 0, 1), aspect="auto", interpolation="nearest")
            shown = range(0, len(z), 2) if len(z) > 13 else range(len(z))
            ax.set_xticks([i + 0.5 for i in shown], [f"{z[i]:.2f}" for i in shown])
            ax.set_yticks([])
            for i, label in enumerate(labels):
                ax.text(i + 0.5, 1.08, _name(int(label), class_names) if label != UNCLEAR
                        else "?", ha="center", va="bottom", color=digit_colour(int(label)),
                        transform=ax.transData, fontweight="bold", clip_on=False,
                        rotation=90 if upright else 0)
            bar_bottom = image_bottom - 26 - 28
            bar = _axes_px(fig, left, bar_bottom, span, 26)
            low, high = intervals[0].start, intervals[-1].end
            px = span / (high - low) if high > low else 0.0
            for part in intervals:
                bar.axvspan(part.start, part.end, color=digit_colour(part.label), linewidth=0)
                name = class_names[part.label] if part.label != UNCLEAR else ""
                if name and part.width * px >= len(name) * _BOLD_CHAR_PX + 6:
                    bar.text((part.start + part.end) / 2, 0.5, name,
                             ha="center", va="center", color="white", fontweight="bold")
            bounds = [low] + [p.end for p in intervals]
            texts = [f"{b:.2f}" for b in bounds]
            kept = _spaced([(b - low) * px for b in bounds], [len(t) * _CHAR_PX for t in texts])
            bar.set_xlim(low, high)
            bar.set_xticks([bounds[i] for i in kept], [texts[i] for i in kept])
            bar.set_xticks(bounds, minor=True)
            bar.set_yticks([])
            bar.set_xlabel(f"z: the {noun} map (bounds of every interval are listed in the "
                           "report)")
    return _record(record)


def plot_manifold(path: Path, images: np.ndarray, x: np.ndarray, y: np.ndarray, title: str,
                  box: tuple[float, float, float, float] | None = None,
                  ticks: tuple[list[float], list[str]] | None = None,
                  labels: tuple[str, str] = ("z1", "z2")) -> Legibility:
    """A len(y) x len(x) grid of decoded images (top row = largest y) placed at their
    coordinates, one image pixel per screen pixel.

    ``x`` and ``y`` are evenly spaced coordinates of the grid's columns and rows; ``ticks``
    (positions, labels) replaces matplotlib's round ticks on both axes; ``box`` = (x_lo, x_hi,
    y_lo, y_hi) is outlined dashed.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    grid = make_grid(images, ncol=len(x), padding=0)
    left, bottom, top = (80, 64, 36) if ticks is None else (100, 80, 36)
    width, height = left + grid.shape[1] + 40, bottom + grid.shape[0] + top
    dx = (x[-1] - x[0]) / max(len(x) - 1, 1) or 1.0
    dy = (y[-1] - y[0]) / max(len(y) - 1, 1) or 1.0
    record: list[Legibility] = []
    with drawing(path, width, height, layout=None, record=record) as fig:
        ax = _axes_px(fig, left, bottom, grid.shape[1], grid.shape[0])
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest", aspect="auto",
                  extent=(x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2))
        if ticks is not None:
            ax.set_xticks(*ticks)
            ax.set_yticks(*ticks)
        if box is not None:
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2],
                                   fill=False, edgecolor="#ff7f0e", linestyle="--",
                                   linewidth=1.5))
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        _text_px(fig, left, height - 10, title, va="top", ha="left", fontsize=10)
    return _record(record)


def plot_digit_map_2d(path: Path, labels: np.ndarray, limit: float, means: np.ndarray,
                      true_labels: np.ndarray | None, class_names: Sequence[str],
                      box: tuple[float, float, float, float], noun: str = "digit"
                      ) -> Legibility:
    """Side by side on the same axes: the classifier's class of the decoding at each grid
    point (grey: unclear), and the test set's posterior means coloured by their true class.

    ``labels`` is the (n, n) map over [-limit, limit]² (top row = high z2); ``box`` (the test
    set's latent range) is outlined dashed on the map.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    n = labels.shape[0]
    half = limit / max(n - 1, 1)  # half a grid step: the map's cells are centred on the points
    reach = max(limit + half, float(np.abs(means).max()) if len(means) else 0.0)
    lim = (-reach, reach)
    legend = [*class_names, "unclear", "test set's range"]
    # As many legend entries per row as fit (each: its text, a swatch and the spacing); long
    # class names take more rows, and the figure grows by one row's height for each.
    widths = [len(text) * _CHAR_PX + _LEGEND_ENTRY_PX for text in legend]
    per_row = len(legend)
    while per_row > 1 and max(sum(widths[i:i + per_row])
                              for i in range(0, len(widths), per_row)) > WIDTH - 16:
        per_row -= 1
    rows = -(-len(legend) // per_row)
    side, left, gap, bottom = 320, 64, 88, 84 + _LEGEND_ROW_PX * (rows - 1)
    record: list[Legibility] = []
    with drawing(path, WIDTH, bottom + side + 40, layout=None, record=record) as fig:
        digit_ax = _axes_px(fig, left, bottom, side, side)
        dots_ax = _axes_px(fig, left + side + gap, bottom, side, side, sharex=digit_ax,
                           sharey=digit_ax)
        rgb = np.array([_rgb(digit_colour(int(d))) for d in labels.ravel()])
        digit_ax.imshow(rgb.reshape(*labels.shape, 3), interpolation="nearest",
                        extent=(-limit - half, limit + half, -limit - half, limit + half))
        digit_ax.add_patch(Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2],
                                     fill=False, edgecolor="black", linestyle="--"))
        known = np.zeros(len(means), np.int64) if true_labels is None else true_labels
        for d in range(len(class_names)):
            chosen = known == d
            dots_ax.scatter(means[chosen, 0], means[chosen, 1], s=1.5, alpha=0.5,
                            color=digit_colour(d), linewidths=0, rasterized=True)
        for ax, title in ((digit_ax, f"the classifier's {noun} of each decoding"),
                          (dots_ax, f"test images' latent means, true {noun}")):
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal")
            ax.set_xlabel("z1")
            ax.set_title(title)
            ax.grid(alpha=0.25)
        digit_ax.set_ylabel("z2")
        handles: list[Any] = [Patch(color=digit_colour(d), label=class_names[d])
                              for d in range(len(class_names))]
        handles += [Patch(color=UNCLEAR_COLOUR, label="unclear"),
                    Line2D([], [], color="black", linestyle="--", label="test set's range")]
        fig.legend(handles=handles, loc="lower center", ncols=per_row, frameon=False,
                   bbox_to_anchor=(0.5, 0.0), handlelength=1.2, columnspacing=0.9,
                   handletextpad=0.4)
    return _record(record)


def _rgb(colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(colour)
