"""Smaller PNGs: a 256-colour palette (or greyscale) with PNG row filters, via Pillow.

Matplotlib writes RGBA without row filters; the study's figures hold few colours, so a
palette keeps them visually identical at a fraction of the size. Used for every study figure,
and to copy figures next to a README (``vaelab report --figures-to DIR``). Nothing here changes
a picture's pixel size: figures are drawn at the size they are shown.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.runs.atomic import atomic_write_bytes

__all__ = ["compact_pixels", "compact_png", "export_figures"]


def compact_png(data: bytes, colours: int = 256) -> bytes:
    """The picture ``data`` (PNG bytes) re-encoded as palette or greyscale PNG, same size."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _compact(image.convert("RGB"), colours)


def compact_pixels(rgb: np.ndarray, colours: int = 256) -> bytes:
    """A uint8 (H, W, 3) picture as a palette or greyscale PNG of the same size."""
    from PIL import Image

    return _compact(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"), colours)


def _compact(rgb: Any, colours: int) -> bytes:
    red, green, blue = rgb.split()
    small = red if red.tobytes() == green.tobytes() == blue.tobytes() else rgb.quantize(colours)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def export_figures(figures_dir: str | os.PathLike[str], dest: str | os.PathLike[str],
                   names: Iterable[str]) -> dict[str, int]:
    """Copy the named figures into ``dest`` as compact PNGs of the same pixel size; returns
    each file's size in bytes."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name in names:
        data = compact_png((Path(figures_dir) / name).read_bytes())
        atomic_write_bytes(dest / name, data)
        sizes[name] = len(data)
    return sizes
