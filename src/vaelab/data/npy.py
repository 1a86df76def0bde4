"""NumPy's ``.npy`` and ``.npz`` files, read without trusting them and never unpickled.

``numpy.load`` would inflate an ``.npz`` member whole before anything can be checked. Here the
``.npy`` header of a file or zip member is parsed first (with NumPy's own header parser, which
evaluates nothing), its dtype and shape are checked against ``vaelab.data.limits``, and only
then is the data read, in chunks, up to exactly the size the header announces (for a
compressed member also at most ``inflate_limit`` of its compressed size). Object arrays are
refused: ``allow_pickle`` stays off, and so nothing in a file can run code.
"""

from __future__ import annotations

import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from vaelab.data.checks import describe_shape
from vaelab.data.limits import MAX_FILE_BYTES, MAX_ITEMS, MAX_SIDE, inflate_limit
from vaelab.errors import VaelabError

__all__ = ["NpzFile", "open_npz", "read_npy"]

_CHUNK = 1 << 20
_MAX_HEADER = 10_000  # NumPy's own default for untrusted headers
_MAX_MEMBERS = 64  # an .npz of a dataset holds a handful of arrays
_MAX_RANK = 4
_NUMBERS = "biuf"  # bool, signed and unsigned integers, floats
# What NumPy's header parser (tokenize, ast.literal_eval) and zipfile raise on damaged input.
_BAD_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
            RuntimeError, struct.error, UnicodeDecodeError, OverflowError, IndexError, KeyError,
            TypeError, SyntaxError, tokenize.TokenError, RecursionError)


def _header(stream: IO[bytes], source: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an .npy header, checked before any data is read."""
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream, _MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream, _MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except _BAD_ZIP as exc:
        raise VaelabError(f"{source} is not a readable .npy array ({_reason(exc)}); expected "
                          "a file written by numpy.save or numpy.savez") from None
    if dtype.hasobject:
        raise VaelabError(f"{source} holds Python objects (a pickled {dtype} array); vaelab "
                          "never unpickles, so store plain numbers (uint8 images, integer "
                          "labels)")
    if dtype.kind not in _NUMBERS and not (dtype.kind == "U" and len(shape) == 1):
        raise VaelabError(f"{source} holds {dtype} values; expected numbers (uint8 or float "
                          "images, integer labels)")
    if not 1 <= len(shape) <= _MAX_RANK or shape[0] > MAX_ITEMS \
            or any(d > MAX_SIDE for d in shape[1:]):
        raise VaelabError(f"{source} holds an array of shape {describe_shape(shape)}; expected "
                          f"at most {MAX_ITEMS:,} items of at most {MAX_SIDE} x {MAX_SIDE}")
    return shape, fortran, dtype


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def read_npy(stream: IO[bytes], source: str, available: int | None = None) -> np.ndarray:
    """The array of one .npy file or member: header checked, then exactly its data read.

    ``available``: the most bytes the data may take (the file's remaining size, or what a
    compressed member may inflate to); a header claiming more is refused before reading.
    """
    shape, fortran, dtype = _header(stream, source)
    count = int(np.prod(shape, dtype=np.int64))
    size = count * dtype.itemsize
    limit = MAX_FILE_BYTES if available is None else min(available, MAX_FILE_BYTES)
    if size > limit:
        raise VaelabError(f"{source} claims {describe_shape(shape)} {dtype} values ({size:,} "
                          f"bytes), more than the file can hold ({limit:,}); it is corrupt, "
                          "truncated or a decompression bomb")
    # Grown chunk by chunk, so memory follows the data that is really there, not the claim.
    data = bytearray()
    try:
        while len(data) <= size:
            chunk = stream.read(min(_CHUNK, size + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    except _BAD_ZIP as exc:
        raise VaelabError(f"{source} is damaged ({_reason(exc)}); write it again") from None
    if len(data) != size:
        what = "ends early" if len(data) < size else "holds more data than its header announces"
        raise VaelabError(f"{source} {what} ({len(data):,} of {size:,} data bytes); it is "
                          "truncated or corrupt")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


@dataclass
class NpzFile:
    """The arrays of an open .npz, read one at a time by name (without the .npy suffix)."""

    path: Path
    archive: zipfile.ZipFile
    size: int  # the file's size on disk, which bounds what a member's directory entry claims

    def names(self) -> list[str]:
        return [info.filename[:-4] for info in self.archive.infolist()]

    def read(self, name: str) -> np.ndarray:
        info = self.archive.getinfo(f"{name}.npy")
        source = f"{self.path} (array {name!r})"
        compressed = min(info.compress_size, self.size)
        available = compressed if info.compress_type == zipfile.ZIP_STORED \
            else inflate_limit(compressed)
        try:
            with self.archive.open(info) as member:
                array = read_npy(member, source, min(available, info.file_size))
                # The member's CRC is only checked once it is read to its end.
                if member.read(1):
                    raise VaelabError(f"{source} holds more data than its header announces; "
                                      "it is corrupt")
        except VaelabError:
            raise
        except _BAD_ZIP as exc:
            raise VaelabError(f"{source} is damaged ({_reason(exc)}); write it again") from None
        return array


@contextmanager
def open_npz(path: Path) -> Iterator[NpzFile]:
    """An .npz whose member list is checked: only .npy arrays, distinct names, a few of them."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise VaelabError(f"{path} is larger than {MAX_FILE_BYTES >> 30} GiB; vaelab reads "
                              "smaller files")
        with path.open("rb") as raw:
            head = raw.read(4)
        if head[:2] != b"PK":
            raise VaelabError(f"{path} is not an .npz file (it starts with 0x{head.hex()}, not "
                              "a zip archive); expected a file written by numpy.savez")
        archive = zipfile.ZipFile(path)
    except VaelabError:
        raise
    except _BAD_ZIP as exc:
        raise VaelabError(f"{path} is not a readable .npz file ({_reason(exc)}); expected a "
                          "file written by numpy.savez") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(infos) > _MAX_MEMBERS:
            raise VaelabError(f"{path} holds {len(infos):,} files; an .npz of a dataset holds "
                              "a few arrays")
        odd = [n for n in names if not n.endswith(".npy") or len(n) == 4]
        if odd or not names:
            found = f"{odd[0]!r}" if odd else "nothing"
            raise VaelabError(f"{path} holds {found}; expected the .npy arrays of numpy.savez")
        if len(set(names)) != len(names):
            raise VaelabError(f"{path} holds two arrays of the same name; it is corrupt")
        if any(info.flag_bits & 0x1 for info in infos):
            raise VaelabError(f"{path} is encrypted; expected a plain numpy.savez file")
        yield NpzFile(path, archive, size)
