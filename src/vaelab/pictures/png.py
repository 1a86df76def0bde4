"""Image grids written as PNG, with a small PNG encoder of our own (no PIL, no torchvision)."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from vaelab.runs.atomic import atomic_write_bytes

__all__ = ["encode_png", "make_grid", "save_grid", "save_png"]


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + tag
        + payload
        + struct.pack(">I", zlib.crc32(tag + payload))
    )


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) greyscale or (H, W, 3) RGB -> PNG bytes."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError("encode_png takes a uint8 array of shape (H, W) or (H, W, 3)")
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(height, -1)
    # Each scanline starts with filter type 0 (none).
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def save_png(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(pixels))


def make_grid(
    images: np.ndarray, ncol: int, padding: int = 2, pad_value: float = 0.5, scale: int = 1
) -> np.ndarray:
    """Tile float images (N, H, W) with values in [0, 1] into one uint8 picture.

    ``scale`` enlarges every pixel to a ``scale`` x ``scale`` block so small digits stay legible.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:  # (N, 1, H, W)
        images = images[:, 0]
    n, height, width = images.shape
    nrow = max(1, -(-n // ncol))
    cell_h, cell_w = height + padding, width + padding
    grid = np.full((nrow * cell_h + padding, ncol * cell_w + padding), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * cell_h, padding + c * cell_w
        grid[top : top + height, left : left + width] = images[i]
    grid = np.clip(grid * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_grid(
    path: str | os.PathLike[str], images: np.ndarray, ncol: int, scale: int = 2, padding: int = 2
) -> None:
    save_png(path, make_grid(images, ncol, padding=padding, scale=scale))
