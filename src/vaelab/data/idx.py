"""Reader for the IDX format of MNIST (LeCun et al.), raw or gzip-compressed.

The header is never trusted: magic, rank and dimensions are checked against what the
caller expects and against the file's real length before anything large is allocated.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from vaelab.errors import VaelabError

__all__ = ["MAX_ITEMS", "decompressed_bytes", "read_idx", "read_idx_bytes", "sha256_hex"]

# Unsigned-byte IDX files: magic is 0x00 0x00 0x08 rank.
_UBYTE = 0x08
# A generous ceiling on items (MNIST has 70,000); anything larger is a forged header.
MAX_ITEMS = 10_000_000
_MAX_FILE_BYTES = 1 << 31


def decompressed_bytes(path: Path) -> bytes:
    """The file's content, gunzipped if it is gzip; errors name the file and the fix."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VaelabError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        # Bounded decompression: a gzip bomb stops at the size limit instead of eating memory.
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = decomp.decompress(raw, _MAX_FILE_BYTES)
        if decomp.unconsumed_tail:
            raise VaelabError(f"{path} decompresses to more than 2 GiB; it is not an IDX file")
        if not decomp.eof:
            raise VaelabError(
                f"{path} is a truncated gzip file; delete it and download it again "
                "(vaelab data download NAME)"
            )
        return data
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise VaelabError(
            f"{path} is not a valid gzip file ({exc}); delete it and download it again "
            "(vaelab data download NAME)"
        ) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_idx_bytes(
    data: bytes, name: str, rank: int, item_shape: tuple[int, ...] = ()
) -> np.ndarray:
    """Parse unsigned-byte IDX content of the given rank; ``item_shape`` fixes dims after N."""
    header_len = 4 + 4 * rank
    if len(data) < header_len:
        raise VaelabError(f"{name} is too short to be an IDX file ({len(data)} bytes)")
    zero, dtype, got_rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _UBYTE or got_rank != rank:
        raise VaelabError(
            f"{name} has the wrong magic number 0x{data[:4].hex()} "
            f"(expected 0x000008{rank:02x}); it is not this kind of IDX file"
        )
    dims = struct.unpack(f">{rank}I", data[4:header_len])
    count, rest = dims[0], dims[1:]
    if item_shape and tuple(rest) != item_shape:
        raise VaelabError(f"{name} holds items of shape {tuple(rest)}, expected {item_shape}")
    if count > MAX_ITEMS or any(d == 0 or d > 4096 for d in rest):
        raise VaelabError(f"{name} claims implausible dimensions {dims}; the header is corrupt")
    expected = count * int(np.prod(rest, dtype=np.int64)) if rest else count
    actual = len(data) - header_len
    if actual != expected:
        raise VaelabError(
            f"{name} should hold {expected} data bytes after its header but holds {actual}; "
            "the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header_len)
    return array.reshape((count, *rest)).copy()


def read_idx(path: Path, rank: int, item_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a uint8 array of shape (N, *item_shape)."""
    return read_idx_bytes(decompressed_bytes(path), str(path), rank, item_shape)
