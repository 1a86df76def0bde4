"""What a dataset's arrays must be, checked in one place for every reader.

Images become what the rest of vaelab uses: uint8 (N, 28, 28), bright pixels the ink, as in
MNIST. A reader hands over whatever its file held; these checks accept

* uint8, or any integer type with values from 0 to 255, unchanged;
* bool, as 0 and 255;
* floats in [0, 1], quantised to the nearest of the 256 levels (``rint(x * 255)``, halves to
  even), so floats that were uint8 / 255 come back exactly;

in the shapes (N, 28, 28), (N, 784), (N, 28, 28, 1) or (N, 1, 28, 28). Other sizes and colour
images (N, H, W, 3 or 4) are converted to 28 x 28 grey only when asked (``resize``). Labels
are non-negative integers, one per image. Every failure is one line naming the file, what it
holds and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaelab.data.limits import MAX_CLASSES, MAX_ITEMS, MAX_SIDE
from vaelab.errors import VaelabError

__all__ = [
    "IMAGE_SHAPE",
    "RESIZE_HINT",
    "check_class_names",
    "check_images",
    "check_labels",
    "describe_shape",
    "pixels_u8",
]

IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
EXPECTED_IMAGES = "28 x 28 grey images: (N, 28, 28) or (N, 784)"
RESIZE_HINT = "pass --resize to convert them to 28 x 28 grey"


def describe_shape(shape: Sequence[int]) -> str:
    """A shape as Python writes a tuple: (5, 28, 28), (7,)."""
    return str(tuple(int(d) for d in shape))


def pixels_u8(array: np.ndarray, source: str) -> np.ndarray:
    """The pixel values of ``array`` as uint8, or a one-line error on a dtype or range outside
    what vaelab accepts (see the module docstring)."""
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind in "iu":
        if array.size:
            smallest, largest = int(array.min()), int(array.max())
            if smallest < 0 or largest > 255:
                raise VaelabError(f"{source} holds {array.dtype} pixel values from {smallest} "
                                  f"to {largest}; expected 0 to 255 (or floats in [0, 1])")
        return array.astype(np.uint8)
    if kind == "f":
        # Checked in the file's own precision: a float64 beyond float32's range would become
        # infinite in the cast before the range check saw it.
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(array.size - np.count_nonzero(finite))
            raise VaelabError(f"{source} holds {bad} NaN or infinite pixel value(s); expected "
                              "floats in [0, 1]")
        if array.size:
            low, high = float(array.min()), float(array.max())
            if low < 0.0 or high > 1.0:
                hint = ("; these look like 0-255 levels: store them as uint8 or divide by 255"
                        if low >= 0.0 and high <= 255.0 else "")
                raise VaelabError(f"{source} holds {array.dtype} pixel values from {low:g} to "
                                  f"{high:g}; expected floats in [0, 1]{hint}")
        values = array.astype(np.float32, copy=False)
        levels: np.ndarray = np.rint(values * np.float32(255)).astype(np.uint8)
        return levels
    raise VaelabError(f"{source} holds {array.dtype} values; expected images as uint8 (0 to "
                      "255) or floats in [0, 1]")


def _layout(shape: tuple[int, ...]) -> tuple[tuple[int, int], int] | None:
    """(height, width) and channels of an image array's shape, or None when it is no image
    array: (N, H*W) only for 784 pixels, (N, H, W), (N, H, W, C) or (N, 1, H, W)."""
    if len(shape) == 2:
        return (IMAGE_SHAPE, 1) if shape[1] == N_PIXELS else None
    if len(shape) == 3:
        return (shape[1], shape[2]), 1
    if len(shape) == 4 and shape[3] in (1, 3, 4):
        return (shape[1], shape[2]), shape[3]
    if len(shape) == 4 and shape[1] == 1:
        return (shape[2], shape[3]), 1
    return None


def check_images(array: np.ndarray, source: str, resize: bool = False) -> np.ndarray:
    """uint8 images (N, 28, 28) from an array a file held; ``resize`` converts other sizes and
    colour images to 28 x 28 grey."""
    shape = tuple(int(d) for d in array.shape)
    layout = _layout(shape)
    if layout is None or not shape[0]:
        found = f"an array of shape {describe_shape(shape)}" if layout is None else "no images"
        raise VaelabError(f"{source} holds {found}; expected {EXPECTED_IMAGES}")
    if shape[0] > MAX_ITEMS:
        raise VaelabError(f"{source} holds {shape[0]:,} images; vaelab reads at most "
                          f"{MAX_ITEMS:,}")
    (height, width), channels = layout
    if max(height, width) > MAX_SIDE or min(height, width) < 1:
        raise VaelabError(f"{source} holds images of {height} x {width} pixels; expected "
                          f"28 x 28 (at most {MAX_SIDE} a side with --resize)")
    pixels = pixels_u8(array, source)
    if (height, width) == IMAGE_SHAPE and channels == 1:
        return np.ascontiguousarray(pixels.reshape(shape[0], *IMAGE_SHAPE))
    colour = "colour " if channels > 1 else ""
    if not resize:
        raise VaelabError(f"{source} holds {colour}images of shape {describe_shape(shape)}; "
                          f"expected {EXPECTED_IMAGES}; {RESIZE_HINT}")
    from vaelab.data.convert import array_to_grey28

    if channels == 1:
        pixels = pixels.reshape(shape[0], height, width)
    else:
        pixels = pixels.reshape(shape[0], height, width, channels)
    return array_to_grey28(pixels)


def check_labels(array: np.ndarray, source: str, n_images: int, images_source: str) -> np.ndarray:
    """int64 labels (N,), one per image, each from 0 to MAX_CLASSES - 1."""
    shape = tuple(int(d) for d in array.shape)
    if len(shape) == 2 and shape[1] == 1:
        array = array.reshape(shape[0])
    elif len(shape) != 1:
        raise VaelabError(f"{source} holds labels of shape {describe_shape(shape)}; expected "
                          "one label per image, (N,)")
    if array.dtype.kind not in "iu":
        raise VaelabError(f"{source} holds {array.dtype} labels; expected integers (class "
                          "numbers from 0)")
    if len(array) != n_images:
        raise VaelabError(f"{source} holds {len(array):,} labels but {images_source} holds "
                          f"{n_images:,} images; expected one label per image")
    if len(array):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= MAX_CLASSES:
            raise VaelabError(f"{source} holds labels from {low} to {high}; expected class "
                              f"numbers from 0 to {MAX_CLASSES - 1}")
    return array.astype(np.int64)


def check_class_names(names: Sequence[str], largest_label: int, source: str) -> tuple[str, ...]:
    """Class names, one per label from 0 to at least ``largest_label``, distinct and not empty."""
    names = tuple(str(n) for n in names)
    if len(names) > MAX_CLASSES:
        raise VaelabError(f"{source} names {len(names):,} classes; vaelab takes at most "
                          f"{MAX_CLASSES:,}")
    if len(names) <= largest_label:
        raise VaelabError(f"{source} names {len(names)} classes but the labels go up to "
                          f"{largest_label}; expected a name for every label")
    if any(not n.strip() or "\n" in n for n in names) or len(set(names)) != len(names):
        raise VaelabError(f"{source} holds empty, multi-line or repeated class names; expected "
                          "one distinct name per class")
    return names
