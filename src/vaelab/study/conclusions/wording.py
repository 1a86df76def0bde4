"""Small pieces of wording the rules share: counts, shares, lists."""

from __future__ import annotations

from collections.abc import Sequence

from vaelab.study.noise import MARGIN, Comparison

__all__ = ["and_list", "count", "digit_names", "judged", "pct", "plural", "several",
           "tolerance"]


def count(value: float) -> str:
    """An active-unit count: 16, or 16.5 for a mean over seeds."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def plural(noun: str) -> str:
    """"digits", "classes"."""
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def several(n: int, noun: str) -> str:
    """"1 digit", "3 digits", "2 classes"."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural(noun)}"


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


def judged(found: Comparison, unit: str = " nats", digits: int = 2) -> str:
    """How a difference stands against its noise, as a clause: "beyond twice their combined
    noise (2 × 0.21 = 0.43 nats)", "within ..." or "no noise was measured to compare it with"."""
    if found.noise is None or found.bound is None:
        return "no noise was measured to compare it with"
    where = "beyond" if found.separated else "within"
    times = "twice" if MARGIN == 2 else f"{MARGIN:g} times"
    return (f"{where} {times} their combined noise ({MARGIN:g} × {found.noise:.{digits}f} = "
            f"{found.bound:.{digits}f}{unit})")
