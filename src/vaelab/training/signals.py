"""Ctrl-C and SIGTERM as a polite request: finish the current step, save, then stop.

``StopOnSignal`` is a context manager whose instance is the ``stop_requested`` callable that
``vaelab.training.loop.fit`` polls after every step. The first SIGINT or SIGTERM only sets a flag;
a second SIGINT raises KeyboardInterrupt at once (the previous checkpoint stays intact,
because every file is written atomically). The process then exits 128 + the signal number:
130 for SIGINT, 143 for SIGTERM, as shells and schedulers expect.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopOnSignal", "exit_code_for"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code_for(signum: int) -> int:
    """The shell's convention for a process ended by a signal."""
    return 128 + int(signum)


class StopOnSignal:
    """Turns SIGINT/SIGTERM into a stop request while the ``with`` block runs."""

    def __init__(self, signals: tuple[signal.Signals, ...] = _SIGNALS) -> None:
        self.signals = signals
        self.signum: int | None = None  # the first signal received, if any
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        """True once a stop was requested (the ``stop_requested`` hook of ``fit``)."""
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.signum if self.signum is not None else signal.SIGINT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # No printing here: a handler may interrupt a write to the same stream.
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: abort now
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> StopOnSignal:
        # Handlers can only be installed from the main thread; elsewhere nothing changes.
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
