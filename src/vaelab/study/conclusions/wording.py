"""Small pieces of wording the rules share: counts, shares, lists."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["and_list", "count", "digit_names", "pct", "several", "tolerance"]


def count(value: float) -> str:
    """An active-unit count: 16, or 16.5 for a mean over seeds."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def several(n: int, noun: str) -> str:
    """"1 digit", "3 digits"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def tolerance(t: float) -> str:
    return f"{100 * t:g} %"


def and_list(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def digit_names(digits: Sequence[int], names: Sequence[str]) -> str:
    return ", ".join(names[d] for d in digits) if digits else "none"
