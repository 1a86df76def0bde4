"""One training per run directory: a lock file that outlives a crash of its holder.

``train.lock`` in the run directory records the holder's pid, host and start time. Where
the file system supports ``flock`` the kernel releases the lock the moment the holder dies,
so a file left behind by ``kill -9`` is recognised as stale and taken over. Elsewhere the
pid is checked instead: a lock of a dead process on this host is stale; a live process,
or one on another host, keeps it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from vaelab.errors import VaelabError

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: fall back to the pid check
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "LockInfo", "RunLock", "lock_holder", "pid_alive"]

log = logging.getLogger(__name__)

LOCK_NAME = "train.lock"
_MAX_LOCK_BYTES = 4096  # a lock file is one short JSON line; never read more


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or last held) a run directory."""

    pid: int
    host: str
    started: float  # time.time() when the lock was taken

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, started {when}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _parse(raw: bytes) -> LockInfo | None:
    try:
        data = json.loads(raw.decode("utf-8"))
        info = LockInfo(int(data["pid"]), str(data["host"]), float(data["started"]))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return info


def _read_fd(fd: int) -> LockInfo | None:
    with contextlib.suppress(OSError):
        return _parse(os.pread(fd, _MAX_LOCK_BYTES, 0))
    return None


def lock_holder(run_dir: str | os.PathLike[str]) -> LockInfo | None:
    """The live process training in ``run_dir``, or None; reads the lock, never takes it.

    With ``flock`` a shared lock is tried and at once released: it fails exactly while a
    holder keeps its exclusive lock. Elsewhere the recorded pid is checked.
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        holder = _read_fd(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return holder or LockInfo(0, "unknown", 0.0)
            except OSError:
                pass  # no flock here: fall back to the pid
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None
        return holder if holder is not None and RunLock._holder_alive(holder) else None
    finally:
        os.close(fd)


class RunLock:
    """Exclusive ownership of a run directory for one training process.

    Use as a context manager; ``acquire`` creates the directory when needed and raises a
    one-line VaelabError when another live process holds it.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.stale: LockInfo | None = None  # the dead holder whose lock was taken over
        self._fd: int | None = None
        self._created: list[Path] = []  # folders made for the lock, removed again if left empty

    def _refuse(self, holder: LockInfo | None) -> VaelabError:
        who = holder.describe() if holder else "another process"
        return VaelabError(
            f"run directory {self.run_dir} is in use by another training ({who}); wait for it "
            f"to finish or stop it, or choose another --out (if no such process exists, "
            f"delete {self.path})")

    def _open(self) -> int:
        missing = [d for d in (self.run_dir, *self.run_dir.parents) if not d.exists()]
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._created = missing
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
                else (exc.strerror or str(exc))
            raise VaelabError(f"cannot write to run directory {self.run_dir}: {reason}; "
                              "choose a writable --out") from None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise VaelabError(f"{self.path} is already held by this process")
        for _ in range(5):
            fd = self._open()
            try:
                if self._try_lock(fd):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the file was replaced while we waited for it: try the new one
        raise VaelabError(f"could not take the lock {self.path}; another process keeps "
                          "recreating it")

    def _try_lock(self, fd: int) -> bool:
        """Lock ``fd``; False when the file it names was removed meanwhile."""
        kernel_lock = fcntl is not None
        if kernel_lock:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._refuse(_read_fd(fd)) from None
            except OSError:  # e.g. a network file system without flock: use the pid check
                kernel_lock = False
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                return False
        except FileNotFoundError:
            return False
        previous = _read_fd(fd)
        if previous is not None and not kernel_lock and self._holder_alive(previous):
            raise self._refuse(previous)
        if previous is not None:
            self.stale = previous
            log.warning("taking over the lock of %s, which is no longer running",
                        previous.describe())
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.time()}).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record + b"\n", 0)
            os.fsync(fd)
        except OSError as exc:
            raise VaelabError(f"cannot write {self.path}: {exc.strerror or exc}; "
                              "choose a writable --out with free space") from None
        return True

    @staticmethod
    def _holder_alive(holder: LockInfo) -> bool:
        if holder.pid == os.getpid() and holder.host == socket.gethostname():
            return True
        if holder.host != socket.gethostname():
            return True  # cannot see processes elsewhere: assume it is alive
        return pid_alive(holder.pid)

    def release(self) -> None:
        """Remove the lock file (while still holding it, so no one can take a dead copy)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        # A run that failed before writing anything (bad data, say) leaves no empty folders.
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
