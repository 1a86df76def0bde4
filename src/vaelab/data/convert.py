"""``--resize``: any image to 28 x 28 grey, the one conversion every reader uses.

An image becomes grey with Pillow's ITU-R 601-2 luma (``convert("L")``; an alpha channel is
dropped), is scaled with Lanczos filtering to fit 28 x 28 without changing its aspect ratio,
and is centred on black (the background of MNIST) where it does not fill the square. Bright
pixels stay the ink, as in MNIST: scans of dark ink on white paper must be inverted first.
Pillow is imported here only, when a conversion is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vaelab.data.checks import IMAGE_SHAPE

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["array_to_grey28", "image_to_grey28"]


def image_to_grey28(image: Image.Image) -> np.ndarray:
    """One Pillow image as uint8 (28, 28): grey, fitted into the square, centred on black."""
    from PIL import Image, ImageOps

    grey = image.convert("L")
    fitted = ImageOps.pad(grey, IMAGE_SHAPE[::-1], method=Image.Resampling.LANCZOS, color=0)
    return np.asarray(fitted, dtype=np.uint8).copy()


def array_to_grey28(pixels: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, 1, 3 or 4) as uint8 (N, 28, 28)."""
    from PIL import Image

    if pixels.ndim == 4 and pixels.shape[3] == 1:
        pixels = pixels[..., 0]
    out = np.empty((len(pixels), *IMAGE_SHAPE), np.uint8)
    for i, item in enumerate(pixels):
        # Pillow reads the mode from the array: L for (H, W), RGB or RGBA for 3 or 4 channels.
        out[i] = image_to_grey28(Image.fromarray(np.ascontiguousarray(item)))
    return out
