"""The ceilings every reader holds a file to: one place for the numbers, so they cannot drift.

A file from a stranger may claim anything in its header. Every reader compares the claim with
these limits and with the file's real size before it allocates, and inflates compressed data
only up to what ``inflate_limit`` allows, so a forged header or a decompression bomb ends in a
one-line error instead of exhausting memory.
"""

from __future__ import annotations

__all__ = [
    "MAX_CLASSES",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_ITEMS",
    "MAX_SIDE",
    "image_file_limit",
    "inflate_limit",
]

# Images (or labels) in one file or folder: MNIST has 70,000, QuickDraw's largest class about
# 300,000; anything above this is a forged header.
MAX_ITEMS = 10_000_000
# Bytes of one file, or of what one compressed file inflates to.
MAX_FILE_BYTES = 1 << 31
# One image's height or width, in an array or an image file (before --resize).
MAX_SIDE = 4096
# Pixels of one image file that --resize will decode (a 4096 x 4096 scan); Pillow's own bomb
# check allows 89 million and warns first, so vaelab refuses earlier, from the header alone.
MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
# Bytes of one image file: a 28 x 28 PNG is under a kilobyte, a large scan a few megabytes.
MAX_IMAGE_FILE_BYTES = 64 << 20
# An image file's decoder inflates all its compressed data, even past the pixels its header
# announces, so the file's size is bounded by its pixel count: at most 8 bytes a pixel (more
# than any real PNG, JPEG or TIFF with its metadata needs), and at least 64 KiB.
_IMAGE_BYTES_PER_PIXEL = 8
_IMAGE_FILE_FLOOR = 64 << 10
# Distinct labels (QuickDraw has 345 categories).
MAX_CLASSES = 10_000
# Compressed image data inflates by a factor of 5 to 20; a deflate bomb by up to about 1,000.
_MAX_RATIO = 200
_RATIO_FLOOR = 64 << 20  # small files may inflate to this much whatever their ratio


def image_file_limit(pixels: int) -> int:
    """The largest image file, in bytes, that may hold ``pixels`` pixels."""
    return min(MAX_IMAGE_FILE_BYTES, max(_IMAGE_FILE_FLOOR, _IMAGE_BYTES_PER_PIXEL * pixels))


def inflate_limit(compressed_bytes: int, claimed_bytes: int | None = None) -> int:
    """The most bytes a compressed stream of ``compressed_bytes`` may inflate to: 2 GiB, and
    200 times its size (at least 64 MiB); ``claimed_bytes``, what the file's header announces,
    lowers the limit further."""
    limit = min(MAX_FILE_BYTES, max(_RATIO_FLOOR, _MAX_RATIO * compressed_bytes))
    return limit if claimed_bytes is None else min(limit, claimed_bytes)
