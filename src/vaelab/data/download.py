"""Download a dataset's four files from its mirrors, checked and written atomically.

Each file is fetched from the mirrors in order. A mirror that fails (network error, stall,
truncated or corrupt content, checksum mismatch) is skipped; the partial download is
deleted; a file appears under its final name only after its decompressed SHA-256 matches.
"""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from vaelab.data.datasets import FILE_KINDS, DatasetSpec, dataset_registry, default_data_root
from vaelab.data.idx import decompressed_bytes, sha256_hex
from vaelab.errors import VaelabError

__all__ = ["download_dataset", "fetch_file"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_MAX_DOWNLOAD = 200 * (1 << 20)  # no MNIST-style file is near this; stops a runaway server
# A server that trickles bytes never trips the per-read timeout; after ``timeout`` seconds a
# transfer must average at least this rate, or the mirror counts as stalled.
_MIN_RATE = 1024  # bytes per second

ProgressHook = Callable[[str, int, int | None], None]


def _fetch_to(url: str, dest: Path, timeout: float, progress: ProgressHook | None) -> None:
    """Stream ``url`` into ``dest``; ``timeout`` bounds every read, so a stall raises, and a
    trickle slower than ``_MIN_RATE`` on average is cut off once ``timeout`` has passed."""
    request = urllib.request.Request(url, headers={"User-Agent": "vaelab"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
        total_header = response.headers.get("Content-Length")
        total = int(total_header) if total_header and total_header.isdigit() else None
        if total is not None and total > _MAX_DOWNLOAD:
            raise OSError(f"response from {url} announces {total} bytes, too many for a dataset")
        # read1 returns what has arrived instead of waiting for a full chunk.
        read = getattr(response, "read1", response.read)
        done = 0
        while chunk := read(_CHUNK):
            done += len(chunk)
            if done > _MAX_DOWNLOAD:
                raise OSError(f"response from {url} exceeds {_MAX_DOWNLOAD} bytes")
            elapsed = time.monotonic() - started
            if elapsed > timeout and done < _MIN_RATE * elapsed:
                raise TimeoutError(f"stalled: {done} bytes in {elapsed:.1f} s")
            out.write(chunk)
            if progress:
                progress(url, done, total)
        if total is not None and done != total:
            raise OSError(f"response from {url} ended after {done} of {total} bytes")
        out.flush()
        os.fsync(out.fileno())


def fetch_file(
    spec: DatasetSpec,
    kind: str,
    folder: Path,
    mirrors: tuple[str, ...] | None = None,
    timeout: float = 30.0,
    progress: ProgressHook | None = None,
) -> Path:
    """Fetch one file into ``folder`` from the first mirror that serves the right content."""
    filename = f"{spec.filename(kind)}.gz"
    final = folder / filename
    failures: list[str] = []
    for base in mirrors if mirrors is not None else spec.mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise VaelabError(f"cannot write into {folder}: {exc.strerror or exc}; pass a "
                              "writable --data-dir") from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _fetch_to(url, tmp, timeout, progress)
            got = sha256_hex(decompressed_bytes(tmp))
            if got != spec.sha256[kind]:
                raise OSError(f"checksum mismatch (got {got[:12]}…)")
            os.replace(tmp, final)
            log.info("fetched %s from %s", filename, url)
            return final
        except (OSError, urllib.error.URLError, http.client.HTTPException, VaelabError,
                ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
            log.info("mirror failed for %s: %s", filename, reason)
        finally:
            tmp.unlink(missing_ok=True)
    tried = "; ".join(failures) or "no mirrors are known for this dataset"
    raise VaelabError(
        f"could not download {filename} ({tried}); check the network, or copy the file into "
        f"{folder} by hand and pass --data-dir"
    )


def download_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    mirrors: tuple[str, ...] | None = None,
    timeout: float = 30.0,
    progress: ProgressHook | None = None,
) -> Path:
    """Fetch every missing or corrupt file of ``name``; returns the dataset's folder."""
    if not (isinstance(timeout, int | float) and 0 < timeout < float("inf")):
        raise VaelabError(f"--timeout must be a number of seconds greater than 0, got {timeout}")
    spec = dataset_registry.get(name)
    folder = default_data_root(data_dir) / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(
            f"cannot create {folder}: {exc.strerror}; pass a writable --data-dir"
        ) from None
    for kind in FILE_KINDS:
        existing = folder / f"{spec.filename(kind)}.gz"
        if existing.is_file():
            try:
                if sha256_hex(decompressed_bytes(existing)) == spec.sha256[kind]:
                    continue
            except VaelabError:
                pass
            log.warning("%s is corrupt; fetching it again", existing)
        fetch_file(spec, kind, folder, mirrors=mirrors, timeout=timeout, progress=progress)
    return folder
