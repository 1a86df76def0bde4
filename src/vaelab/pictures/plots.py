"""Matplotlib figures drawn at the size they are shown (the Agg backend, imported when used).

A figure is made with ``drawing(path, width_px, height_px)``: it is exactly that many pixels at
``DPI``, is saved without cropping or scaling, and before it is written every visible text is
checked: at least ``MIN_TEXT_PX`` tall (font size x DPI / 72), inside the picture, and not
overlapping another text. A text too small is an error; overlaps and texts cut off are logged,
and ``legibility`` reports all three so tests can insist on none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaelab.runs.atomic import atomic_write_bytes

__all__ = ["DPI", "FONT_PT", "MIN_TEXT_PX", "Legibility", "drawing", "legibility",
           "plot_loss_curves", "save_figure"]

log = logging.getLogger(__name__)

DPI = 100
MIN_TEXT_PX = 10.0  # the smallest text height a figure may use, in pixels
FONT_PT = 9.0  # the body text of every figure: 12.5 px at 100 dpi
STYLE: dict[str, Any] = {  # every size at least FONT_PT - 0.5 pt, so at least 11.8 px at 100 dpi
    "font.size": FONT_PT, "axes.titlesize": FONT_PT + 1, "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT - 0.5, "ytick.labelsize": FONT_PT - 0.5,
    "legend.fontsize": FONT_PT - 0.5, "figure.titlesize": FONT_PT + 1,
    "legend.title_fontsize": FONT_PT - 0.5,
}
_TERMS = (("loss", "negative ELBO"), ("recon", "reconstruction (BCE)"), ("kl", "KL"))


@dataclass
class Legibility:
    """What ``save_figure`` found in a figure before writing it."""

    width: int  # pixels of the written PNG
    height: int
    smallest_text_px: float | None  # None for a figure without text
    overlaps: list[tuple[str, str]] = field(default_factory=list)  # pairs of texts
    cut_off: list[str] = field(default_factory=list)  # texts reaching past the picture's edge

    @property
    def ok(self) -> bool:
        return (self.smallest_text_px is None or self.smallest_text_px >= MIN_TEXT_PX) \
            and not self.overlaps and not self.cut_off


def _undrawn_tick_labels(fig: Any) -> set[int]:
    """Tick labels matplotlib keeps but does not draw: those outside their axis' view."""
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(low), abs(high), 1.0)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                loc = tick.get_loc()
                if loc is None or not low - slack <= loc <= high + slack:
                    hidden.update({id(tick.label1), id(tick.label2)})
    return hidden


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    hidden = _undrawn_tick_labels(fig)
    return [t for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden
            and (t.axes is None or t.axes.get_visible())]


def legibility(fig: Any) -> Legibility:
    """Measure a drawn figure's texts: the smallest, overlapping pairs, those cut off."""
    canvas = fig.canvas
    renderer = canvas.get_renderer()
    width, height = (round(v) for v in fig.bbox.size)
    texts = _texts(fig)
    sizes = [t.get_fontsize() * fig.dpi / 72 for t in texts]
    boxes = [t.get_window_extent(renderer) for t in texts]
    overlaps, cut_off = [], []
    for i, a in enumerate(boxes):
        if a.x0 < -0.5 or a.y0 < -0.5 or a.x1 > width + 0.5 or a.y1 > height + 0.5:
            cut_off.append(texts[i].get_text())
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            # Strictly overlapping areas; texts that only touch are fine.
            if min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5:
                overlaps.append((texts[i].get_text(), texts[j].get_text()))
    return Legibility(width, height, min(sizes) if sizes else None, overlaps, cut_off)


def new_figure(width_px: int, height_px: int, layout: Any = "constrained") -> Any:
    """A figure of exactly width_px x height_px pixels at DPI, with an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Legibility:
    """Check the figure's texts, then write it as a compact PNG of exactly its pixel size.

    The figure is drawn once; the PNG holds the very pixels that were checked.
    """
    from vaelab.pictures.compact import compact_pixels

    fig.canvas.draw()
    found = legibility(fig)
    if found.smallest_text_px is not None and found.smallest_text_px < MIN_TEXT_PX:
        raise ValueError(f"{os.fspath(path)}: a text is {found.smallest_text_px:.1f} px tall, "
                         f"below the {MIN_TEXT_PX:g} px minimum")
    for a, b in found.overlaps:
        log.warning("%s: texts %r and %r overlap", os.fspath(path), a, b)
    for text in found.cut_off:
        log.warning("%s: text %r reaches past the edge", os.fspath(path), text)
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    atomic_write_bytes(path, compact_pixels(pixels))
    return found


@contextmanager
def drawing(path: str | os.PathLike[str], width_px: int, height_px: int,
            layout: Any = "constrained",
            record: list[Legibility] | None = None) -> Iterator[Any]:
    """``with drawing(path, w, h) as fig:`` draw on ``fig``; it is checked and saved on exit.

    The figure is drawn and saved under ``STYLE``; what the check found is appended to
    ``record`` when one is given.
    """
    import matplotlib

    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        fig = new_figure(width_px, height_px, layout)
        yield fig
        found = save_figure(fig, path)
    if record is not None:
        record.append(found)


def _as_runs(histories: Sequence[Any]) -> list[Sequence[Mapping[str, Any]]]:
    """One history (a list of epoch records) or several (one per seed) as a list of histories."""
    if histories and isinstance(histories[0], Mapping):
        return [histories]
    return [h for h in histories if h]


def _band(histories: list[Sequence[Mapping[str, Any]]], key: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Epochs, mean, min and max of ``key`` over the histories' common epochs."""
    if not histories or any(key not in h[0] for h in histories):
        return None
    n = min(len(h) for h in histories)
    values = np.array([[float(r[key]) for r in h[:n]] for h in histories])
    epochs = np.array([r["epoch"] for r in histories[0][:n]])
    return epochs, values.mean(0), values.min(0), values.max(0)


def _rate_changes(runs: Mapping[str, Sequence[Any]]) -> bool:
    """Whether any run's learning rate ("lr" of its epoch records) changes over its epochs."""
    return any(len({r["lr"] for r in history if "lr" in r}) > 1
               for histories in runs.values() for history in _as_runs(histories))


def plot_loss_curves(
    runs: Mapping[str, Sequence[Any]], path: str | os.PathLike[str], title: str = "",
    width_px: int = 820, height_px: int = 360,
) -> Legibility:
    """Train (dashed) and validation (solid) loss of each run, one panel per loss term.

    A run is one history (a list of epoch records) or a list of histories, one per seed: then
    the line is the mean over seeds and the shaded band spans the lowest to the highest seed.
    When a run's learning rate changes over its epochs (a schedule), a fourth panel shows each
    run's rate per epoch, and the panels stand two by two (the figure is then 1.7 times as
    tall).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    record: list[Legibility] = []
    rate = _rate_changes(runs)
    if rate:
        height_px = round(height_px * 1.7)
    with drawing(path, width_px, height_px, record=record) as fig:
        axes = list(fig.subplots(2, 2).flat) if rate else list(fig.subplots(1, 3))
        colours = [f"C{i}" for i in range(10)]
        handles: list[Any] = []
        several = False
        for i, (label, histories) in enumerate(runs.items()):
            colour = colours[i % len(colours)]
            group = _as_runs(histories)
            several |= len(group) > 1
            for ax, (key, _) in zip(axes[:3], _TERMS, strict=True):
                for split, style, alpha in (("train", "--", 0.6), ("val", "-", 1.0)):
                    band = _band(group, f"{split}_{key}")
                    if band is None:
                        continue
                    epochs, mean, low, high = band
                    ax.plot(epochs, mean, color=colour, linestyle=style, alpha=alpha,
                            marker="o" if len(epochs) == 1 else None)  # one epoch: a dot
                    if len(group) > 1:
                        ax.fill_between(epochs, low, high, color=colour, alpha=0.18, linewidth=0)
            if rate:  # the rate of the run (of its first seed: the seeds share a schedule)
                rows = [r for r in group[0] if "lr" in r]
                axes[3].plot([r["epoch"] for r in rows], [r["lr"] for r in rows], color=colour,
                             marker="o" if len(rows) == 1 else None)
            handles.append(Line2D([], [], color=colour, label=label))
        if rate:
            axes[3].set_yscale("log")
        names = [name for _, name in _TERMS] + (["learning rate"] if rate else [])
        for ax, name in zip(axes, names, strict=True):
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            first, last = ax.dataLim.intervalx
            if last - first < 4:  # a few epochs: room for whole-number ticks at each
                ax.set_xlim(first - 0.5, last + 0.5)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("nats per image")
        if rate:
            axes[2].set_ylabel("nats per image")
        handles += [Line2D([], [], color="black", linestyle="--", alpha=0.6, label="train"),
                    Line2D([], [], color="black", label="validation")]
        if several:
            handles.append(Patch(color="black", alpha=0.18, label="lowest to highest seed"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
                   frameon=False)
        if title:
            fig.suptitle(title)
    return record[0]
