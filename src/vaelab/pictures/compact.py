"""Smaller PNGs: a 256-colour palette (or greyscale) with PNG row filters, via Pillow.

Matplotlib writes RGBA without row filters; the study's figures hold few colours, so a
palette keeps them visually identical at a fraction of the size. Used for every study figure,
and to copy figures next to a README (``vaelab report --figures-to DIR``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from vaelab.runs.atomic import atomic_write_bytes

__all__ = ["compact_png", "export_figures"]


def compact_png(data: bytes, colours: int = 256, max_width: int | None = None,
                grey_levels: int = 256) -> bytes:
    """The picture ``data`` (PNG bytes) re-encoded as palette or greyscale PNG.

    ``max_width`` shrinks wider pictures (Lanczos); ``grey_levels`` < 256 rounds grey
    pictures to fewer shades. Both only for copies meant for a README.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    if max_width and rgb.width > max_width:
        height = round(rgb.height * max_width / rgb.width)
        rgb = rgb.resize((max_width, height), Image.Resampling.LANCZOS)
    red, green, blue = rgb.split()
    if red.tobytes() == green.tobytes() == blue.tobytes():
        step = 255 / (grey_levels - 1)
        small = red if grey_levels >= 256 else red.point(lambda v: round(round(v / step) * step))
    else:
        small = rgb.quantize(colours)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def export_figures(figures_dir: str | os.PathLike[str], dest: str | os.PathLike[str],
                   names: Iterable[str], max_width: int = 700, grey_levels: int = 32
                   ) -> dict[str, int]:
    """Copy the named figures into ``dest`` as small PNGs; returns each file's size in bytes."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name in names:
        data = compact_png((Path(figures_dir) / name).read_bytes(), max_width=max_width,
                           grey_levels=grey_levels)
        atomic_write_bytes(dest / name, data)
        sizes[name] = len(data)
    return sizes
