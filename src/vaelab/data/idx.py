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

from vaelab.data.limits import MAX_FILE_BYTES, MAX_ITEMS, MAX_SIDE, inflate_limit
from vaelab.errors import VaelabError

__all__ = ["DOWNLOAD_AGAIN", "MAX_ITEMS", "decompressed_bytes", "read_idx", "read_idx_bytes",
           "sha256_hex"]

# Unsigned-byte IDX files: magic is 0x00 0x00 0x08 rank.
_UBYTE = 0x08
_HEAD_BYTES = 20  # magic + up to four dimensions
# What to do about a damaged file of a registered dataset; a user's own files get their own fix.
DOWNLOAD_AGAIN = "delete it and download it again (vaelab data download NAME)"


def _claimed_size(head: bytes, path: Path, fix: str) -> int:
    """Bytes the IDX header at the start of ``head`` announces; forged headers fail here."""
    rank = head[3] if len(head) >= 4 else 0
    if head[:3] != b"\x00\x00\x08" or not 1 <= rank <= 4 or len(head) < 4 + 4 * rank:
        raise VaelabError(f"{path} does not hold unsigned-byte IDX data (it starts with "
                          f"0x{head[:4].hex()}); {fix}")
    dims = struct.unpack(f">{rank}I", head[4:4 + 4 * rank])
    if dims[0] > MAX_ITEMS or any(d > MAX_SIDE for d in dims[1:]):
        raise VaelabError(f"{path} claims implausible dimensions {dims}; the header is corrupt")
    return 4 + 4 * rank + int(np.prod(dims, dtype=np.int64))


def _gunzip(raw: bytes, path: Path, fix: str) -> bytes:
    """Inflate ``raw`` without trusting it: the IDX header is read first and at most the size
    it announces is inflated, itself capped (``vaelab.data.limits.inflate_limit``: 2 GiB, and
    200 times the compressed size, far above what real images reach); a gzip bomb or a header
    claiming 2**31 images stops early.
    """
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # All of raw is offered: fewer than _HEAD_BYTES come back only when the stream ends or
    # stops (a truncated file) before them.
    head = decomp.decompress(raw, _HEAD_BYTES)
    parts, total = [head], len(head)
    if not decomp.eof:
        limit = inflate_limit(len(raw), _claimed_size(head, path, fix))
        while not decomp.eof and total <= limit:
            chunk = decomp.decompress(decomp.unconsumed_tail, limit + 1 - total)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        if total > limit:
            raise VaelabError(f"{path} inflates to more data than its IDX header announces (or "
                              "than any real IDX file); it is corrupt or a gzip bomb")
    if not decomp.eof:
        raise VaelabError(f"{path} is a truncated gzip file; {fix}")
    return b"".join(parts)


def decompressed_bytes(path: Path, fix: str = DOWNLOAD_AGAIN) -> bytes:
    """The file's content, gunzipped if it is gzip; errors name the file and ``fix``."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise VaelabError(f"{path} is larger than 2 GiB; it is not an IDX file")
        raw = path.read_bytes()
    except OSError as exc:
        raise VaelabError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return _gunzip(raw, path, fix)
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise VaelabError(f"{path} is not a valid gzip file ({exc}); {fix}") from None


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
    if count > MAX_ITEMS or any(d == 0 or d > MAX_SIDE for d in rest):
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


def read_idx(path: Path, rank: int, item_shape: tuple[int, ...] = (),
             fix: str = DOWNLOAD_AGAIN) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a uint8 array of shape (N, *item_shape)."""
    return read_idx_bytes(decompressed_bytes(path, fix), str(path), rank, item_shape)
