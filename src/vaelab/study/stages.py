"""Where the analysis of a study spends its time: seconds per named stage.

``analyze`` times each stage it runs and keeps the totals in results.json under ``seconds``, so
``benchmarks/bench_report.py`` can say what each measure costs without a second code path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Stages"]


class Stages:
    """Accumulated wall-clock seconds per stage name, in the order stages first ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def to_dict(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}
