"""Matplotlib figures (imported only when a figure is drawn; the Agg backend, no display)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from vaelab.runs.atomic import atomic_path

__all__ = ["plot_loss_curves", "save_figure"]

_TERMS = (("loss", "negative ELBO"), ("recon", "reconstruction (BCE)"), ("kl", "KL"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_loss_curves(
    runs: dict[str, Sequence[dict[str, Any]]], path: str | os.PathLike[str], title: str = ""
) -> None:
    """Train and validation curves of each run: one panel per loss term, nats per image."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, history) in enumerate(runs.items()):
        colour = colours[i % len(colours)]
        epochs = [h["epoch"] for h in history]
        for ax, (key, name) in zip(axes, _TERMS, strict=True):
            ax.plot(epochs, [h[f"train_{key}"] for h in history], color=colour, alpha=0.45,
                    linestyle="--", label=f"{label} train")
            if history and f"val_{key}" in history[0]:
                ax.plot(epochs, [h[f"val_{key}"] for h in history], color=colour,
                        label=f"{label} validation")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.set_ylabel("nats per image")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
