from __future__ import annotations

import gzip
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import idx_bytes, write_idx
from vaelab.data.idx import MAX_ITEMS, read_idx, read_idx_bytes
from vaelab.errors import VaelabError


def test_roundtrip_gzip_and_raw(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    for compress in (True, False):
        path = write_idx(tmp_path / f"x{compress}", images, compress=compress)
        got = read_idx(path, rank=3, item_shape=(28, 28))
        assert got.dtype == np.uint8 and got.shape == (3, 28, 28)
        np.testing.assert_array_equal(got, images)


def test_labels(tmp_path: Path) -> None:
    labels = np.array([0, 9, 3], np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels), rank=1), labels)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"\x00\x00\x09\x03" + b[4:], "wrong magic"),
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "truncated or corrupt"),
        (lambda b: b[:3], "too short"),
        (lambda b: b[:4] + struct.pack(">I", 2**31) + b[8:], "implausible"),
        (lambda b: b[:8] + struct.pack(">I", 27) + b[12:], r"expected \(28, 28\)"),
    ],
)
def test_bad_headers_are_rejected(mutate, message: str) -> None:
    good = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(VaelabError, match=message):
        read_idx_bytes(mutate(good), "file", rank=3, item_shape=(28, 28))


def _peak_bytes(call: Callable[[], object]) -> int:
    """The most memory Python and numpy held at once while ``call`` ran (it must raise)."""
    tracemalloc.start()
    try:
        with pytest.raises(VaelabError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_forged_count_rejected_before_allocation() -> None:
    """A header claiming MAX_ITEMS images (7.8 GB) over a 16-byte body fails on the length
    check, before an array of the claimed size exists."""
    forged = struct.pack(">HBBIII", 0, 8, 3, MAX_ITEMS, 28, 28) + bytes(16)
    with pytest.raises(VaelabError, match=r"should hold 7840000000 data bytes .* holds 16"):
        read_idx_bytes(forged, "forged", rank=3, item_shape=(28, 28))
    assert _peak_bytes(lambda: read_idx_bytes(forged, "forged", 3, (28, 28))) < 1 << 20


def test_gzip_inflates_no_more_than_the_header_announces(tmp_path: Path) -> None:
    """A gzip whose IDX header claims 10 images but which inflates to 100 MB stops after the
    10 images' bytes: what is held at once stays far below what the stream holds."""
    bomb = gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)) + bytes(100 << 20))
    path = tmp_path / "bomb.gz"
    path.write_bytes(bomb)
    with pytest.raises(VaelabError, match="inflates to more data than its IDX header"):
        read_idx(path, rank=3)
    assert _peak_bytes(lambda: read_idx(path, rank=3)) < 2 * len(bomb) + (1 << 20)


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(VaelabError, match="gzip"):
        read_idx(path, rank=3)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VaelabError, match="cannot read"):
        read_idx(tmp_path / "nope.gz", rank=3)
