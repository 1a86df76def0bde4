from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import idx_bytes, write_idx
from vaelab.data import idx, limits
from vaelab.data.idx import MAX_ITEMS, read_idx, read_idx_bytes, sha256_hex
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


# --- every refusal, word for word: each is the one line a user sees ---------------------------

def _gz(path: Path, content: bytes) -> Path:
    path.write_bytes(gzip.compress(content, mtime=0))
    return path


def _header(*dims: int, rank: int | None = None, dtype: int = 0x08) -> bytes:
    return struct.pack(">HBB", 0, dtype, len(dims) if rank is None else rank) + struct.pack(
        f">{len(dims)}I", *dims)


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(VaelabError) as info:
        call()
    return str(info.value)


def test_raw_file_refusals_word_for_word(tmp_path: Path) -> None:
    path = tmp_path / "images"
    path.write_bytes(_header(2, 28, 28, dtype=0x09) + bytes(2 * 784))
    assert _message(lambda: read_idx(path, rank=3)) == (
        f"{path} has the wrong magic number 0x00000903 (expected 0x00000803); it is not this "
        "kind of IDX file")
    path.write_bytes(_header(2, 28, 28) + bytes(2 * 784 - 1))
    assert _message(lambda: read_idx(path, rank=3)) == (
        f"{path} should hold 1568 data bytes after its header but holds 1567; the file is "
        "truncated or corrupt")
    path.write_bytes(_header(2, 28, 27) + bytes(2 * 28 * 27))
    assert _message(lambda: read_idx(path, rank=3, item_shape=(28, 28))) == (
        f"{path} holds items of shape (28, 27), expected (28, 28)")
    path.write_bytes(b"\x00\x00\x08")
    assert _message(lambda: read_idx(path, rank=1)) == (
        f"{path} is too short to be an IDX file (3 bytes)")
    assert _message(lambda: read_idx(tmp_path / "nope", rank=1)) == (
        f"cannot read {tmp_path / 'nope'}: No such file or directory")


def test_item_dimensions_from_1_to_4096_and_empty_files_load() -> None:
    for dims in [(1, 4096), (2, 1), (0, 28)]:
        array = read_idx_bytes(_header(*dims) + bytes(dims[0] * dims[1]), "f", rank=2)
        assert array.shape == dims
    assert read_idx_bytes(_header(0), "labels", rank=1).shape == (0,)  # a header alone
    for dims in [(1, 4097), (3, 0)]:
        assert _message(lambda d=dims: read_idx_bytes(_header(*d), "f", rank=2)) == (  # type: ignore[misc]
            f"f claims implausible dimensions {dims}; the header is corrupt")


def test_gzip_refusals_word_for_word(tmp_path: Path) -> None:
    start = "does not hold unsigned-byte IDX data (it starts with 0x"
    fix = "); delete it and download it again (vaelab data download NAME)"
    # Each stream goes on past the 20 bytes of the largest header, so the header is checked
    # before anything else is inflated (a stream that ends sooner is parsed as a whole).
    implausible = "claims implausible dimensions {}; the header is corrupt"
    cases = {
        "dtype": (_header(2, 28, 28, dtype=0x09), f"{start}00000903{fix}"),
        "rank 0": (_header(rank=0), f"{start}00000800{fix}"),
        "rank 5": (_header(1, 1, 1, 1, 1), f"{start}00000805{fix}"),
        "count": (_header(MAX_ITEMS + 1, 28, 28), implausible.format((MAX_ITEMS + 1, 28, 28))),
        "item": (_header(3, 5000, 28), implausible.format((3, 5000, 28))),
    }
    for name, (content, message) in cases.items():
        path = _gz(tmp_path / f"{name}.gz", content + bytes(100))
        assert _message(lambda p=path: read_idx(p, rank=3)) == f"{path} {message}", name
    # A count of exactly MAX_ITEMS is plausible, in the header read before inflating (the
    # stream goes on past 20 bytes) and after: what fails is the length.
    path = _gz(tmp_path / "max.gz", _header(MAX_ITEMS, 28, 28) + bytes(100))
    assert _message(lambda: read_idx(path, rank=3)) == (
        f"{path} should hold 7840000000 data bytes after its header but holds 100; the file "
        "is truncated or corrupt")
    good = gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8)), mtime=0)
    path.write_bytes(good[:-12])
    assert _message(lambda: read_idx(path, rank=3)) == (
        f"{path} is a truncated gzip file; delete it and download it again (vaelab data "
        "download NAME)")
    # A user's own file gets the caller's fix instead.
    assert _message(lambda: read_idx(path, rank=3, fix="check what wrote it")) == (
        f"{path} is a truncated gzip file; check what wrote it")
    path.write_bytes(good[:10] + bytes(len(good) - 10))
    message = _message(lambda: read_idx(path, rank=3))
    assert message.startswith(f"{path} is not a valid gzip file (") and message.endswith(
        "); delete it and download it again (vaelab data download NAME)"), message


def test_gzip_of_every_rank_and_item_size_loads(tmp_path: Path) -> None:
    # Each stream is longer than the largest header (20 bytes), so its header is checked first.
    for shape in [(30,), (4, 5), (2, 3, 4), (2, 2, 3, 4), (1, 4096)]:
        array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
        path = _gz(tmp_path / "x.gz", idx_bytes(array))
        np.testing.assert_array_equal(read_idx(path, rank=len(shape)), array)


def test_a_gzip_cut_inside_its_header(tmp_path: Path) -> None:
    """A stream whose first 12 bytes inflate and which then stops (no end marker): too little
    for the three dimensions its rank announces."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    path = tmp_path / "cut.gz"
    path.write_bytes(packer.compress(_header(2, 28, 28)[:12]) + packer.flush(zlib.Z_SYNC_FLUSH))
    assert _message(lambda: read_idx(path, rank=3)) == (
        f"{path} does not hold unsigned-byte IDX data (it starts with 0x00000803); delete it and "
        "download it again (vaelab data download NAME)")


def test_one_byte_more_than_the_header_announces_is_a_bomb(tmp_path: Path) -> None:
    for extra in (1, 4):
        path = _gz(tmp_path / "extra.gz", idx_bytes(np.zeros((3, 28, 28), np.uint8))
                   + bytes(extra))
        assert _message(lambda p=path: read_idx(p, rank=3)) == (  # type: ignore[misc]
            f"{path} inflates to more data than its IDX header announces (or than any real IDX "
            "file); it is corrupt or a gzip bomb")


def test_a_forged_item_size_inflates_nothing_past_the_header(tmp_path: Path) -> None:
    """A header claiming items 4097 rows tall or 5000 wide, or more than MAX_ITEMS of them, over
    a 100 MB stream is refused on the header: without that check, 64 MiB would be inflated
    before the same refusal."""
    for dims in [(10_000, 4097, 28), (10_000, 28, 5000), (MAX_ITEMS + 1, 28, 28)]:
        path = _gz(tmp_path / "tall.gz", _header(*dims) + bytes(100 << 20))
        assert _peak_bytes(lambda p=path: read_idx(p, rank=3)) < 2 * path.stat().st_size + (
            1 << 20), dims


def test_the_inflation_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A header claiming 7.8 GB inflates at most 64 MiB (or 200 times the file), and never more
    than the 2 GiB file ceiling: one byte past 64 MiB is a bomb, exactly 64 MiB is not."""
    header = _header(MAX_ITEMS - 1, 28, 28)
    at_cap = _gz(tmp_path / "cap.gz", header + bytes((64 << 20) - len(header)))
    assert _message(lambda: read_idx(at_cap, rank=3)).endswith(
        "data bytes after its header but holds 67108848; the file is truncated or corrupt")
    past = _gz(tmp_path / "past.gz", header + bytes((64 << 20) - len(header) + 1))
    assert _message(lambda: read_idx(past, rank=3)).endswith("it is corrupt or a gzip bomb")
    # 200 times the file: 400 kB of noise make a 400 kB file, so 70 MB inflate in full.
    noise = np.random.default_rng(0).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    big = _gz(tmp_path / "big.gz", header + noise + bytes(70_000_000))
    assert 200 * big.stat().st_size > 70_400_000 > 64 << 20
    assert "holds 70400000; the file is truncated" in _message(lambda: read_idx(big, rank=3))
    # The 2 GiB ceiling, scaled down: a file of exactly the ceiling is read, one byte more is not.
    monkeypatch.setattr(idx, "MAX_FILE_BYTES", 1000)  # the file's size, checked by the reader
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 1000)  # what a stream may inflate to
    labels = tmp_path / "labels"
    labels.write_bytes(_header(992) + bytes(992))  # 8 bytes of header: 1000 in all
    assert read_idx(labels, rank=1).shape == (992,)
    labels.write_bytes(_header(993) + bytes(993))
    assert _message(lambda: read_idx(labels, rank=1)) == (
        f"{labels} is larger than 2 GiB; it is not an IDX file")
    small_bomb = _gz(tmp_path / "bomb.gz", header + bytes(5000))
    assert _message(lambda: read_idx(small_bomb, rank=3)).endswith("or a gzip bomb")


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
