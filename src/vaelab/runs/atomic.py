"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError

__all__ = [
    "TEMP_SUFFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "ensure_free_space",
    "make_dir",
    "remove_stale_temps",
]

# Temp files are named ".<target>.<random>.tmp" beside their target.
TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe(exc: OSError, path: Path) -> VaelabError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return VaelabError(f"no space left on the device while writing {path}; free some space "
                           "or choose another --out; the previous file is intact")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return VaelabError(f"cannot write {path}: permission denied; choose a writable --out")
    return VaelabError(f"cannot write {path}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path; on success it is fsynced and renamed to ``path``, else deleted."""
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                        dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _describe(exc, target) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise _describe(exc, target) from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_with(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    _write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files a killed writer left in ``folder``; call only while owning it.

    Readers never look at them (they open final names only), so this is housekeeping.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def ensure_free_space(folder: str | os.PathLike[str], needed: int, what: str) -> None:
    """Raise a one-line VaelabError when ``folder`` has fewer than ``needed`` bytes free."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell; the writes themselves will report a full disk
    if free < needed:
        raise VaelabError(
            f"{folder} has {free / 1e6:.1f} MB free but {what} needs about {needed / 1e6:.1f} MB; "
            "free some space or choose another --out")


def make_dir(folder: str | os.PathLike[str], what: str = "run directory") -> Path:
    """Create ``folder`` (and its parents) or raise a one-line error naming it and the fix."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"cannot create {what} {path}: {exc.strerror}; "
                          "choose a writable --out") from None
    return path
