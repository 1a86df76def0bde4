"""Property-based tests: malformed IDX files and checkpoints end in a VaelabError, nothing else.

Each parser gets the hypothesis profile's example count (1,000 under the ``ci`` profile, see
conftest.py) of generated files: random bytes, truncations, wrong magic, wrong or
forged dimensions (up to 2**32 - 1 images), bad gzip, forged safetensors headers and
metadata, pickles. A file is allowed to load only when it is still well formed; every
other one must raise VaelabError — never another exception, a hang or a large allocation
(each parse is timed and its memory measured: for IDX files the Python-side peak allocation
with tracemalloc; for checkpoints, whose tensors torch allocates outside tracemalloc's view, the
growth of the process's peak resident memory during that one parse, the kernel's mark reset
before it through /proc/self/clear_refs).
"""

from __future__ import annotations

import gzip
import json
import pickle
import struct
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab.config import TrainConfig
from vaelab.data.idx import read_idx
from vaelab.errors import VaelabError
from vaelab.models import create_model
from vaelab.runs.checkpoint import TrainState, read_checkpoint, save_checkpoint
from vaelab.runs.rebuild import build_model

SLOW_SECONDS = 30.0  # a hang, not a slow moment on a loaded machine
PEAK_BYTES = 256 << 20  # memory ceiling per parse (traced for IDX, resident for checkpoints)
LOADED, ERROR = "loaded (still well formed)", "VaelabError"
GROWTH = "largest growth of peak resident memory in one parse (MB)"

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _examples() -> int:
    """How many files each parser is given: the loaded profile's example count."""
    return int(settings.default.max_examples)


def _proc_status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (reported in KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) << 10
    raise AssertionError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> int:
    """Lower the kernel's peak-resident mark of this process (VmHWM) to its present resident
    size, so the next reading is the peak of what runs from now on; returns that size."""
    Path("/proc/self/clear_refs").write_text("5")
    return _proc_status_bytes("VmRSS")


def _measured(parse: Any, path: Path, outcomes: Counter[str], kind: str,
              resident: bool = False) -> Any:
    """Run ``parse(path)``; only a result or a VaelabError may come out, fast and small.

    Small is its Python-side peak allocation, traced (numpy's arrays included, even those
    never touched); with ``resident``, the growth of the process's peak resident memory
    during this parse instead, which also sees torch's tensors (tracemalloc does not).
    """
    if resident:
        base = _reset_peak_rss()
    else:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        result = parse(path)
        outcomes[LOADED] += 1
        outcomes[f"{kind}: loaded"] += 1
    except VaelabError:
        result = None
        outcomes[ERROR] += 1
        outcomes[f"{kind}: VaelabError"] += 1
    finally:
        if resident:
            peak = _proc_status_bytes("VmHWM") - base
            outcomes[GROWTH] = max(outcomes[GROWTH], peak >> 20)
        else:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    seconds = time.perf_counter() - started
    assert seconds < SLOW_SECONDS, (kind, seconds)
    assert peak < PEAK_BYTES, (kind, path, f"{peak >> 20} MB")
    return result


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vaelab-fuzz-") as folder:
        yield Path(folder)


# ---------------------------------------------------------------------------------------- IDX

def _idx(array: np.ndarray, dims: tuple[int, ...] | None = None,
         magic: bytes | None = None) -> bytes:
    dims = tuple(array.shape) if dims is None else dims
    head = magic if magic is not None else struct.pack(">HBB", 0, 8, len(dims))
    return head + struct.pack(f">{len(dims)}I", *dims) + array.tobytes()


_U32 = st.one_of(st.integers(0, 70), st.sampled_from([2**31, 2**32 - 1, 10_000_001, 4097]),
                 st.integers(0, 2**32 - 1))


@st.composite
def _idx_files(draw: st.DrawFn) -> tuple[str, bytes, int]:
    rank = draw(st.sampled_from([1, 3]))
    n = draw(st.integers(0, 6))
    array = np.zeros((n, 28, 28) if rank == 3 else (n,), np.uint8)
    good = _idx(array)
    kind = draw(st.sampled_from(["random", "truncated", "magic", "dims", "rank", "extra",
                                 "gzip-truncated", "gzip-flipped", "gzip-garbage", "gzip-of"]))
    if kind == "random":
        data = draw(st.binary(max_size=4000))
    elif kind == "truncated":
        data = good[:draw(st.integers(0, max(len(good) - 1, 0)))]
    elif kind == "magic":
        magic = draw(st.binary(min_size=4, max_size=4).filter(
            lambda m: m != struct.pack(">HBB", 0, 8, rank)))
        data = magic + good[4:]
    elif kind == "dims":
        dims = tuple(draw(_U32) for _ in range(rank))
        data = _idx(array, dims)
    elif kind == "rank":
        other = draw(st.integers(0, 255).filter(lambda r: r != rank))
        data = _idx(array, tuple(draw(_U32) for _ in range(min(other, 6))),
                    struct.pack(">HBB", 0, 8, other))
    elif kind == "extra":
        data = good + draw(st.binary(min_size=1, max_size=100))
    else:
        inner = draw(st.sampled_from([good, _idx(array, (2**31, 28, 28)[:rank])]))
        packed = gzip.compress(inner if kind != "gzip-of" else draw(st.binary(max_size=500)))
        if kind == "gzip-truncated":
            packed = packed[:draw(st.integers(0, len(packed) - 1))]
        elif kind == "gzip-flipped":
            at = draw(st.integers(2, len(packed) - 1))
            packed = packed[:at] + bytes([packed[at] ^ draw(st.integers(1, 255))]) + packed[at + 1:]
        elif kind == "gzip-garbage":
            packed = b"\x1f\x8b" + draw(st.binary(max_size=400))
        data = packed
    return kind, data, rank


def test_idx_reader_never_trusts_a_file(scratch: Path) -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=_idx_files())
    def check(case: tuple[str, bytes, int]) -> None:
        kind, data, rank = case
        path = scratch / "fuzz-idx"
        path.write_bytes(data)
        shape = (28, 28) if rank == 3 else ()
        array = _measured(lambda p: read_idx(p, rank, shape), path, outcomes, kind)
        if array is not None:
            assert array.dtype == np.uint8 and array.shape[1:] == shape

    check()
    total = outcomes[ERROR] + outcomes[LOADED]
    print(f"\nIDX reader, {total} files:", *sorted(outcomes.items()), sep="\n  ")
    assert total >= _examples()
    for kind in ("truncated", "magic", "rank", "extra", "gzip-truncated"):  # never well formed
        assert outcomes[f"{kind}: loaded"] == 0, kind


# -------------------------------------------------------------------------------- checkpoints

def _checkpoint_bytes(folder: Path) -> tuple[bytes, bytes]:
    """A real resumable checkpoint (mlp, z_dim 2) and a small one with the same metadata."""
    torch.manual_seed(0)
    model = create_model(name="mlp", z_dim=2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(3, 1, 28, 28)).loss.backward()
    optimizer.step()
    path = folder / "real.safetensors"
    save_checkpoint(path, model, TrainConfig(model="mlp", z_dim=2), TrainState(step=1), optimizer)
    return path.read_bytes(), _small(path.read_bytes())


def _split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def _small(raw: bytes) -> bytes:
    """The real metadata with two tiny tensors: cheap to mutate a thousand times."""
    header, _ = _split(raw)
    small = {"__metadata__": header["__metadata__"],
             "model.to_logits.bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "rng.cpu": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]}}
    return _join(small, bytes(12))


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.text(max_size=6), inner, max_size=3), max_leaves=8)
_META_KEYS = ["format", "config", "model_config", "state", "optimizer"]


@st.composite
def _checkpoint_files(draw: st.DrawFn, real: bytes, small: bytes) -> tuple[str, bytes]:
    # The real checkpoint (7.5 MB) is slow to write and load, so its kinds come less often.
    cheap = ["random", "truncated", "header-size", "tensor-entry", "metadata-value",
             "metadata-field", "pickle", "tensor-swap", "optimizer-group"]
    kind = draw(st.sampled_from([*cheap, *cheap, "flip-real", "truncated-real"]))
    if kind == "random":
        return kind, draw(st.binary(max_size=3000))
    if kind == "truncated":
        return kind, small[:draw(st.integers(0, len(small) - 1))]
    if kind == "truncated-real":
        return kind, real[:draw(st.integers(0, len(real) - 1))]
    if kind == "header-size":
        size = draw(st.one_of(st.integers(0, 2**64 - 1),
                              st.sampled_from([2**31, 2**63, 2**64 - 1])))
        return kind, size.to_bytes(8, "little") + small[8:]
    if kind == "pickle":
        obj = draw(st.sampled_from([{"a": 1}, [1, 2], "text", Path("/x")]))
        return kind, pickle.dumps(obj, protocol=draw(st.integers(2, 5)))
    real_header = kind in ("flip-real", "optimizer-group")
    header, body = _split(real if real_header else small)
    if kind == "optimizer-group":  # one setting of Adam's parameter group, in a real file
        optimizer = json.loads(header["__metadata__"]["optimizer"])
        group = optimizer["param_groups"][0]
        group[draw(st.sampled_from(sorted(group)))] = draw(st.one_of(
            _JSON, st.lists(st.one_of(st.integers(-2, 9), st.text(max_size=2)), max_size=9)))
        header["__metadata__"]["optimizer"] = json.dumps(optimizer)
        return kind, _join(header, body)
    if kind == "tensor-entry":
        entry = header["model.to_logits.bias"]
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        entry[field] = draw(st.one_of(
            _JSON, st.sampled_from(["F32", "I64", "U8", "F8_E4M3", "C64"]),
            st.lists(st.sampled_from([0, 1, 2**31, 2**62, 2**64 - 1, -1]), max_size=4)))
        return kind, _join(header, body)
    if kind == "tensor-swap":
        header["rng.cpu"], header["model.to_logits.bias"] = (header["model.to_logits.bias"],
                                                             header["rng.cpu"])
        return kind, _join(header, body)
    meta = header["__metadata__"]
    key = draw(st.sampled_from(_META_KEYS))
    if kind == "metadata-value":
        meta[key] = draw(st.one_of(st.text(max_size=30), _JSON.map(json.dumps)))
        if draw(st.booleans()):
            meta[key] = draw(_JSON)  # not even a string
        return kind, _join(header, body)
    if kind == "metadata-field" and key != "format":
        try:
            value = json.loads(meta[key])
        except (KeyError, ValueError):
            value = {}
        if isinstance(value, dict) and value:
            field = draw(st.sampled_from(sorted(value)))
            value[field] = draw(st.one_of(_JSON, st.sampled_from(
                [10**9, -1, 2**31, "gpt5", [1, 100000, 100000], None, 1e308])))
        meta[key] = json.dumps(value)
        return kind, _join(header, body)
    # flip-real: a few random bytes anywhere in a real checkpoint (mostly its header).
    data = bytearray(real)
    size = int.from_bytes(real[:8], "little")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.one_of(st.integers(0, 8 + size - 1), st.integers(0, len(real) - 1)))
        data[at] ^= draw(st.integers(1, 255))
    return kind, bytes(data)


def _load_like_resume(path: Path) -> object:
    """What `vaelab train --resume` and `vaelab evaluate` do with a checkpoint file."""
    checkpoint = read_checkpoint(path)
    model = build_model(checkpoint)
    if checkpoint.optimizer_state is not None:
        optimizer = torch.optim.Adam(model.parameters())
        optimizer.load_state_dict(checkpoint.optimizer_state)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(checkpoint.rng["cpu"])
            # "Loaded" must mean usable: one training step with the restored state.
            model(torch.rand(2, 1, 28, 28)).loss.backward()
            optimizer.step()
    return model



@pytest.fixture(scope="module")
def checkpoints(scratch: Path) -> tuple[bytes, bytes]:
    """A real checkpoint and its small twin, built once per module (not at import)."""
    folder = scratch / "built"
    folder.mkdir()
    return _checkpoint_bytes(folder)


def test_checkpoint_loader_never_trusts_a_file(scratch: Path,
                                               checkpoints: tuple[bytes, bytes]) -> None:
    intact = scratch / "intact.safetensors"
    intact.write_bytes(checkpoints[0])
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring one parse's peak resident memory needs Linux's /proc")
    _load_like_resume(intact)  # the unmutated file does load
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=_checkpoint_files(*checkpoints))
    def check(case: tuple[str, bytes]) -> None:
        kind, content = case
        path = scratch / "fuzz.safetensors"
        path.write_bytes(content)
        _measured(_load_like_resume, path, outcomes, kind, resident=True)

    check()
    total = outcomes[ERROR] + outcomes[LOADED]
    print(f"\ncheckpoint loader, {total} files:", *sorted(outcomes.items()), sep="\n  ")
    assert total >= _examples()
    for kind in ("random", "truncated", "truncated-real", "header-size", "pickle", "tensor-swap"):
        assert outcomes[f"{kind}: loaded"] == 0, kind  # never well formed
