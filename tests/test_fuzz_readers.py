"""Property-based tests: malformed user datasets end in a one-line VaelabError, nothing else.

The readers of ``--dataset PATH`` get what ``tests/test_fuzz.py`` gives the IDX reader: the
hypothesis profile's example count (1,000 each under the ``ci`` profile, see conftest.py) of
generated files, each read as ``vaelab train`` reads it (``read_dataset``: the format, every
check, the held-out split). The files: random bytes, truncations, flipped bytes, wrong
shapes, dtypes and values, pickled object arrays, forged .npy headers (up to 10**12 images),
forged zip directories, zip and PNG decompression bombs, text files named .png, forged PNG
sizes, folders laid out wrongly. A file may load only when it is still well formed (and then
its arrays are what vaelab uses); every other one must raise VaelabError with a one-line
message, never another exception or a hang. Every parse is timed and its Python-side peak
allocation measured with tracemalloc (NumPy reports its arrays there); Pillow allocates
outside tracemalloc's view, so the image-folder run also checks the process's peak RSS.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import resource
import shutil
import struct
import tempfile
import time
import tracemalloc
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import idx_bytes
from vaelab.data import read_dataset
from vaelab.data.content import DatasetContent
from vaelab.errors import VaelabError

SLOW_SECONDS = 30.0  # a hang, not a slow moment on a loaded machine
PEAK_BYTES = 256 << 20  # Python-side allocation ceiling per parse
RSS_GROWTH = 512 << 20  # the image-folder run's peak RSS growth (Pillow's decoders)
LOADED, ERROR = "loaded (still well formed)", "VaelabError"

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

Case = tuple[str, dict[str, bytes], bool]  # kind, files (relative path -> bytes), resize


def _examples() -> int:
    return int(settings.default.max_examples)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _write(root: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(data)


def _check_loaded(content: DatasetContent) -> None:
    for images, labels in ((content.train_images, content.train_labels),
                           (content.test_images, content.test_labels)):
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(images) >= 1
        assert labels is None or (labels.dtype == np.int64 and labels.shape == (len(images),))


def _parse(target: Path, resize: bool, outcomes: Counter[str], kind: str) -> None:
    """Read ``target`` as train does; only a well-formed result or a one-line VaelabError may
    come out, fast and small."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        content = read_dataset(str(target), resize=resize)
        _check_loaded(content)
        outcomes[LOADED] += 1
        outcomes[f"{kind}: loaded"] += 1
    except VaelabError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message
        outcomes[ERROR] += 1
        outcomes[f"{kind}: VaelabError"] += 1
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    seconds = time.perf_counter() - started
    assert seconds < SLOW_SECONDS, (kind, seconds)
    assert peak < PEAK_BYTES, (kind, peak)


def _run(strategy: st.SearchStrategy[Case], scratch: Path, target: Callable[[Path], Path],
         name: str, never_load: tuple[str, ...],
         examples: tuple[Case, ...] = ()) -> Counter[str]:
    """Parse ``strategy``'s cases, and ``examples`` (cases that must be among them whatever
    the profile's count draws), counting each outcome by kind."""
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=strategy)
    def check(case: Case) -> None:
        kind, files, resize = case
        _write(scratch / "case", files)
        _parse(target(scratch / "case"), resize, outcomes, kind)

    for case in examples:
        check = example(case=case)(check)
    check()
    total = outcomes[ERROR] + outcomes[LOADED]
    print(f"\n{name}, {total} datasets:", *sorted(outcomes.items()), sep="\n  ")
    assert total >= _examples()
    for kind in never_load:
        assert outcomes[f"{kind}: loaded"] == 0, kind
    return outcomes


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    # Each case is a fresh folder; removing folders costs milliseconds on some disks and
    # microseconds in memory, so the cases are written to /dev/shm where there is one.
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="vaelab-fuzz-data-", dir=where) as folder:
        yield Path(folder)


# ------------------------------------------------------------------------- arrays and .npy

def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)  # object arrays are written as pickles
    return buffer.getvalue()


def _forged_npy(shape: str, descr: str, fortran: str, payload: bytes,
                header_len: int | None = None) -> bytes:
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    header = text.encode("latin1", "replace")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    length = len(header) if header_len is None else header_len
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", length % 65536) + header + payload


_SMALL = st.integers(0, 6)
_DIM = st.one_of(st.integers(0, 40), st.sampled_from([784, 4097, 2**31, 2**32 - 1, 10**12]))


@st.composite
def _images(draw: st.DrawFn) -> np.ndarray:
    """An image array, well formed or not: shapes, dtypes and values drawn."""
    n = draw(st.integers(1, 6))
    shape = draw(st.sampled_from([(n, 28, 28), (n, 784), (n, 28, 28, 1), (n, 1, 28, 28),
                                  (n, 28, 28, 3), (n, 27, 28), (n,), (n, 28, 28, 2),
                                  (n, 30, 30), (0, 28, 28)]))
    dtype = draw(st.sampled_from(["uint8", "float32", "float64", "int64", "bool", "uint16",
                                  "float16", "int8"]))
    values = draw(st.sampled_from(["levels", "unit", "wide", "nan", "negative"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = {"levels": rng.integers(0, 256, shape), "unit": rng.random(shape),
            "wide": rng.random(shape) * 1000, "nan": np.full(shape, np.nan),
            "negative": -rng.random(shape)}[values]
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(base).astype(dtype)


@st.composite
def _array_file(draw: st.DrawFn, images: np.ndarray) -> tuple[str, bytes]:
    """One .npy file's bytes, mutated one way or another."""
    good = _npy(images)
    kind = draw(st.sampled_from(["array", "random", "truncated", "flipped", "extra", "objects",
                                 "dtype", "header", "claim", "header-length"]))
    if kind == "array":
        return kind, good
    if kind == "random":
        return kind, draw(st.binary(max_size=3000))
    if kind == "truncated":
        return kind, good[:draw(st.integers(0, len(good) - 1))]
    if kind == "flipped":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.one_of(st.integers(0, min(127, len(data) - 1)),
                                st.integers(0, len(data) - 1)))
            data[at] ^= draw(st.integers(1, 255))
        return kind, bytes(data)
    if kind == "extra":
        return kind, good + draw(st.binary(min_size=1, max_size=100))
    if kind == "objects":
        return kind, _npy(np.array([{"a": 1}, [2], "x"] * 2, dtype=object))
    if kind == "dtype":
        descr = draw(st.sampled_from(["'|O'", "'<c8'", "'|V16'", "'<M8[s]'", "'<U5'", "'|S4'",
                                      "[('a', '<i4')]", "'<f8'", "'>u2'", "'bogus'", "5"]))
        return kind, _forged_npy("(2, 28, 28)", descr, "False", bytes(2 * 28 * 28 * 8))
    if kind in ("header", "claim"):
        dims = ([10**12, 28, 28] if kind == "claim"
                else [draw(_DIM) for _ in range(draw(st.integers(0, 5)))])
        shape = draw(st.sampled_from([f"({', '.join(map(str, dims))},)", "[2, 28, 28]",
                                      "'shape'", "(-1, 28, 28)", "(2.5, 28)"]))
        if kind == "claim":
            shape = "(1000000000000, 28, 28)"
        fortran = draw(st.sampled_from(["False", "True", "0", "'yes'"]))
        return kind, _forged_npy(shape, "'|u1'", fortran, bytes(draw(st.integers(0, 5000))))
    # header-length: the two bytes that say how long the header is, forged
    return kind, _forged_npy("(1, 28, 28)", "'|u1'", "False", bytes(784),
                             header_len=draw(st.integers(0, 65535)))


@st.composite
def _npy_cases(draw: st.DrawFn) -> Case:
    kind, data = draw(_array_file(draw(_images())))
    return kind, {"images.npy": data}, draw(st.booleans())


def test_npy_reader_never_trusts_a_file(scratch: Path) -> None:
    outcomes = _run(_npy_cases(), scratch, lambda case: case / "images.npy", ".npy reader",
                    never_load=("random", "truncated", "extra", "objects", "claim"))
    assert outcomes["array: loaded"] > 0  # the well-formed arrays do load


# ---------------------------------------------------------------------------------- .npz

def _zip(members: list[tuple[str, bytes]], compress: bool) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two members of one name are a case of their own
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


@functools.cache
def _npz_bomb() -> bytes:
    """A deflated member whose .npy header announces two images and whose data inflates to
    32 MiB; built once (about 32 KB)."""
    member = _npy(np.zeros((2, 28, 28), np.uint8)) + bytes(32 << 20)
    return _zip([("x_train.npy", member)], compress=True)


def _directory_forged(data: bytes, draw: st.DrawFn) -> bytes:
    """The central directory's size fields of every member, forged."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        for offset in (20, 24):  # compressed and uncompressed sizes
            out[at + offset:at + offset + 4] = struct.pack(
                "<I", draw(st.sampled_from([0, 1, 100, 2**31, 2**32 - 1])))
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


@st.composite
def _npz_cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 6))
    images = np.random.default_rng(n).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    kind = draw(st.sampled_from(["keras", "one-array", "array-member", "keys", "labels",
                                 "random", "truncated", "flipped", "directory", "bomb",
                                 "ratio-bomb", "not-npy", "many-members"]))
    compress = draw(st.booleans())
    members: list[tuple[str, bytes]] = []
    if kind == "keras":
        keys = draw(st.lists(st.sampled_from(["x_train", "y_train", "x_test", "y_test"]),
                             min_size=1, max_size=4, unique=True))
        arrays = {"x_train": images, "y_train": labels, "x_test": images, "y_test": labels}
        members = [(f"{k}.npy", _npy(arrays[k])) for k in keys]
    elif kind == "one-array":
        members = [(draw(st.sampled_from(["arr_0.npy", "images.npy"])), _npy(images))]
    elif kind == "array-member":  # a mutated .npy inside an .npz
        sub_kind, data = draw(_array_file(draw(_images())))
        kind = f"npz/{sub_kind}"
        members = [("x_train.npy", data)]
    elif kind == "keys":
        # Zip member names end at a NUL byte; every other character may come.
        names = draw(st.lists(st.text(st.characters(codec="ascii", exclude_characters="\0"),
                                      max_size=8), min_size=1, max_size=4))
        members = [(f"{name}.npy", _npy(images)) for name in names]
    elif kind == "labels":  # labels that do not fit the images
        bad = draw(st.sampled_from([labels[:-1] if n > 1 else np.zeros(2, int),
                                    labels.astype(np.float32), -labels - 1, labels + 10**6,
                                    labels[:, None].repeat(2, axis=1), np.array([[1]])]))
        members = [("x_train.npy", _npy(images)), ("y_train.npy", _npy(bad))]
    elif kind == "not-npy":
        members = [("x_train.npy", _npy(images)), (draw(st.sampled_from(
            ["notes.txt", "x_train.npy", ".npy", "dir/"])), b"hello")]
    elif kind == "many-members":
        members = [(f"arr_{i}.npy", _npy(images[:1])) for i in range(draw(st.integers(2, 80)))]
    elif kind == "ratio-bomb":  # a small compressed member claiming 1,000,000 images
        member = _forged_npy("(1000000, 28, 28)", "'|u1'", "False", bytes(50_000))
        members = [("x_train.npy", member)]
        compress = True
    if kind == "random":
        return kind, {"data.npz": draw(st.binary(max_size=3000))}, False
    if kind == "bomb":
        return kind, {"data.npz": _npz_bomb()}, False
    good = _zip(members or [("x_train.npy", _npy(images))], compress)
    if kind == "truncated":
        good = good[:draw(st.integers(0, len(good) - 1))]
    elif kind == "flipped":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        good = bytes(data)
    elif kind == "directory":
        good = _directory_forged(good, draw)
    return kind, {"data.npz": good}, draw(st.booleans())


def test_npz_reader_never_trusts_a_file(scratch: Path) -> None:
    outcomes = _run(_npz_cases(), scratch, lambda case: case / "data.npz",
                    ".npz reader", never_load=("random", "truncated", "bomb", "ratio-bomb",
                                               "not-npy", "many-members", "npz/objects",
                                               "npz/claim", "npz/extra", "npz/truncated"))
    assert outcomes["keras: loaded"] > 0 and outcomes["one-array: loaded"] > 0


# -------------------------------------------------------------------------- image folders

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(
        ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(width: int, height: int, scanlines: bytes, colour: int = 0) -> bytes:
    """A PNG with valid chunk CRCs whatever its header claims (8-bit, ``colour`` type)."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(scanlines, 9)) + _png_chunk(b"IEND", b""))


@functools.cache
def _png_bombs() -> dict[str, bytes]:
    """Decompression bombs: a 28 x 28 PNG whose IDAT inflates to 16 MiB, and a 4096 x 4096
    one of zeros (16 MiB of pixels in 16 KB, at --resize's limit); built once."""
    return {"idat": _png(28, 28, bytes(16 << 20)),
            "limit": _png(4096, 4096, bytes(4097 * 4096))}


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif",
            "WEBP": ".webp", "PPM": ".pgm"}


@st.composite
def _image_file(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """(kind, file name suffix, bytes) of one image file."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    fmt = draw(st.sampled_from(sorted(_FORMATS)))
    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    # Decoding the 16-megapixel bomb takes a tenth of a second: it comes a third as often.
    common = ["image", "other-size", "colour", "text", "random", "truncated", "flipped",
              "forged-size", "idat-bomb", "over-limit", "wrong-suffix"]
    kind = draw(st.sampled_from([*common, *common, *common, "limit-bomb"]))
    if kind == "image":
        return kind, _FORMATS[fmt], _encoded(grey, fmt)
    if kind == "other-size":
        shape = (draw(st.integers(1, 80)), draw(st.integers(1, 80)))
        return kind, ".png", _encoded(rng.integers(0, 256, shape, dtype=np.uint8), "PNG")
    if kind == "colour":
        colour = rng.integers(0, 256, (28, 28, draw(st.sampled_from([3, 4]))), dtype=np.uint8)
        return kind, ".png", _encoded(colour, "PNG")
    if kind == "text":
        return kind, ".png", draw(st.text(max_size=200)).encode() or b"\n"
    if kind == "random":
        return kind, draw(st.sampled_from(sorted(_FORMATS.values()))), draw(
            st.binary(max_size=2000))
    if kind in ("truncated", "flipped"):
        data = bytearray(_encoded(grey, fmt))
        if kind == "truncated":
            return kind, _FORMATS[fmt], bytes(data[:draw(st.integers(0, len(data) - 1))])
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return kind, _FORMATS[fmt], bytes(data)
    if kind == "forged-size":  # a valid PNG whose header claims any size, CRCs intact
        width, height = draw(st.integers(0, 2**31)), draw(st.integers(0, 2**31))
        return kind, ".png", _png(width, height, bytes(29 * 28))
    if kind == "idat-bomb":
        return kind, ".png", _png_bombs()["idat"]
    if kind == "limit-bomb":
        return kind, ".png", _png_bombs()["limit"]
    if kind == "over-limit":  # one pixel wider than --resize decodes, built in no time
        return kind, ".png", _png(4097, 4096, bytes(4098))
    return kind, ".txt", _encoded(grey, "PNG")  # an image under a name that is no image


@st.composite
def _folder_cases(draw: st.DrawFn) -> Case:
    layout = draw(st.sampled_from(["flat", "classes", "splits", "empty-class", "mixed"]))
    files: dict[str, bytes] = {}
    kinds: list[str] = []
    for i in range(draw(st.integers(1, 3))):
        kind, suffix, data = draw(_image_file())
        kinds.append(kind)
        where = {"flat": "", "classes": f"c{i % 2}/", "splits": ("train/", "test/")[i % 2],
                 "empty-class": "a/", "mixed": ("", "b/")[i % 2]}[layout]
        files[f"{where}{i}{suffix}"] = data
    if layout == "empty-class":
        files["z/"] = b""
    kind = f"{layout}/{'+'.join(sorted(set(kinds)))}"
    if len(set(kinds)) > 1:
        kind = f"{layout}/mixed-kinds"
    return kind, files, draw(st.booleans())


def _well_formed_folders() -> tuple[Case, ...]:
    """A flat folder and a folder of two classes, eight valid 28 x 28 PNGs each: the reader
    must load these, so a reader that refuses everything fails the test below."""
    rng = np.random.default_rng(0)
    pngs = [_encoded(rng.integers(0, 256, (28, 28), dtype=np.uint8), "PNG") for _ in range(8)]
    return (("flat/image", {f"{i}.png": png for i, png in enumerate(pngs)}, False),
            ("classes/image", {f"c{i % 2}/{i}.png": png for i, png in enumerate(pngs)}, False))


def test_image_folder_reader_never_trusts_a_file(scratch: Path) -> None:
    before = _peak_rss() >> 20
    outcomes = _run(_folder_cases(), scratch, lambda case: case, "image folder",
                    never_load=tuple(f"{layout}/{kind}" for layout in
                                     ("flat", "classes", "splits", "empty-class", "mixed")
                                     for kind in ("text", "random", "truncated",
                                                  "forged-size", "over-limit",
                                                  "wrong-suffix")),
                    examples=_well_formed_folders())
    grown = (_peak_rss() >> 20) - before
    print(f"  peak RSS grew {grown} MB")
    assert grown < RSS_GROWTH >> 20, f"peak memory grew by {grown} MB"
    assert outcomes["flat/image: loaded"] > 0 and outcomes["classes/image: loaded"] > 0


# ------------------------------------------------------------------------------ part files

@st.composite
def _part_cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(n)
    arrays = {"train_images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "train_labels": (np.arange(n) % 10).astype(np.uint8),
              "test_images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "test_labels": (np.arange(n) % 10).astype(np.uint8)}
    names = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    kind = draw(st.sampled_from(["parts", "idx-mutated", "npy-mutated", "npz-mutated",
                                 "counts", "duplicates", "labels-only", "gzip-garbage"]))
    parts = draw(st.lists(st.sampled_from(sorted(names)), min_size=1, max_size=4, unique=True))
    files: dict[str, bytes] = {}
    for part in parts:
        array = arrays[part]
        style = draw(st.sampled_from(["idx", "idx.gz", "npy", "npz"]))
        if style == "idx":
            files[names[part]] = idx_bytes(array)
        elif style == "idx.gz":
            files[f"{names[part]}.gz"] = gzip.compress(idx_bytes(array))
        else:
            stem = f"kmnist-{part.replace('_images', '-imgs').replace('_labels', '-labels')}"
            files[f"{stem}.{style}"] = _npy(array) if style == "npy" else _zip(
                [("arr_0.npy", _npy(array))], compress=True)
    target = sorted(files)[draw(st.integers(0, len(files) - 1))]
    if kind == "idx-mutated":
        dims = tuple(draw(st.one_of(st.integers(0, 40), st.sampled_from([2**32 - 1, 4097])))
                     for _ in range(draw(st.sampled_from([1, 3]))))
        head = struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
        files[target] = head + draw(st.binary(max_size=3000))
    elif kind == "npy-mutated":
        files[target.split(".")[0] + ".npy"] = draw(_array_file(draw(_images())))[1]
        files.pop(target)
    elif kind == "npz-mutated":
        sub = draw(_array_file(draw(_images())))[1]
        files.pop(target)
        files[target.split(".")[0] + ".npz"] = _zip([("arr_0.npy", sub)], compress=True)
    elif kind == "counts":
        files["train-labels-idx1-ubyte"] = idx_bytes(np.zeros(n + 1, np.uint8))
        files["train-images-idx3-ubyte"] = idx_bytes(arrays["train_images"])
    elif kind == "duplicates":
        files["train-images-idx3-ubyte"] = idx_bytes(arrays["train_images"])
        files["emnist-x-train-images-idx3-ubyte"] = idx_bytes(arrays["train_images"])
    elif kind == "labels-only":
        files = {names["train_labels"]: idx_bytes(arrays["train_labels"])}
    elif kind == "gzip-garbage":
        files[target + ".gz" if not target.endswith(".gz") else target] = (
            b"\x1f\x8b" + draw(st.binary(max_size=400)))
    return kind, files, draw(st.booleans())


def test_part_files_reader_never_trusts_a_file(scratch: Path) -> None:
    outcomes = _run(_part_cases(), scratch, lambda case: case, "part files",
                    never_load=("counts", "duplicates", "labels-only"))
    assert outcomes["parts: loaded"] > 0
