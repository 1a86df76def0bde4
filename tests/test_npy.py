"""vaelab.data.npy: .npy and .npz read from their headers, exactly, and never unpickled."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vaelab.data.npy import open_npz, read_npy
from vaelab.errors import VaelabError


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _read(data: bytes) -> np.ndarray:
    return read_npy(io.BytesIO(data), "x.npy", len(data))


@pytest.mark.parametrize("array", [
    np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
    np.asfortranarray(np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)),
    np.arange(10, dtype=">u2"),  # big-endian
    np.array([True, False]),
    np.array(["zero", "one"]),  # class names: a 1-D array of strings
])
def test_arrays_read_back_exactly(array: np.ndarray) -> None:
    out = _read(_npy_bytes(array))
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_a_header_claiming_a_trillion_images_is_refused_before_reading() -> None:
    header = _npy_bytes(np.zeros((1, 28, 28), np.uint8))
    forged = header.replace(b"(1, 28, 28)", b"(1000000000000, 28, 28)")
    with pytest.raises(VaelabError, match="1000000000000"):
        _read(forged)


def test_a_header_claiming_more_than_the_file_holds_is_refused() -> None:
    header = _npy_bytes(np.zeros((5, 28, 28), np.uint8))
    forged = header.replace(b"(5, 28, 28)", b"(9000, 28, 28)")
    with pytest.raises(VaelabError, match="more than the file can hold"):
        _read(forged)


@pytest.mark.parametrize(("cut", "word"), [(-10, "ends early"), (10, "more data than")])
def test_truncated_or_padded_data(cut: int, word: str) -> None:
    data = _npy_bytes(np.zeros((2, 28, 28), np.uint8))
    data = data[:cut] if cut < 0 else data + bytes(cut)
    with pytest.raises(VaelabError, match=word):
        read_npy(io.BytesIO(data), "x.npy", None)


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))  # unpickling it creates the marker file

    data = io.BytesIO()
    np.save(data, np.array([Trap()], dtype=object), allow_pickle=True)
    np.load(io.BytesIO(data.getvalue()), allow_pickle=True)  # the trap is real ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(VaelabError, match=r"Python objects.*never unpickles"):
        _read(data.getvalue())
    assert not marker.exists()  # ... and vaelab never sprang it


def test_npz_members_must_be_plain_npy_arrays(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", _npy_bytes(np.zeros((2, 28, 28), np.uint8)))
        archive.writestr("notes.txt", b"hello")
    with pytest.raises(VaelabError, match=r"holds 'notes\.txt'"), open_npz(path):
        pass
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(VaelabError, match=r"not an \.npz file"), open_npz(tmp_path / "text.npz"):
        pass


def test_a_member_that_inflates_past_its_header_is_refused(tmp_path: Path) -> None:
    good = _npy_bytes(np.zeros((2, 28, 28), np.uint8))
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", good + bytes(50 << 20))  # 50 MB of zeros after it
    assert path.stat().st_size < 100_000
    with open_npz(path) as npz, pytest.raises(VaelabError, match="more data than its header"):
        npz.read("x_train")
