"""Where an error stops improving as z_dim grows, by a stated rule.

Rule: with errors e(z) measured at increasing z_dims, the elbow is the smallest z_dim from
which no larger z_dim improves the error by more than ``tolerance`` times the whole improvement
seen across the sweep, max(e) - min(e). With 5 %, it is the point after which at most 5 % of the
sweep's gain is left to win.

The verdict depends on the tolerance and on the sweep's range, which its smallest z_dim sets;
the study therefore reports it for several tolerances and on more than one measure. When the
rule lands on the largest z_dim of a sweep of two or more, the error was still falling by more
than the tolerance at the sweep's last step: the elbow was *not reached* within the sweep.

How robust a verdict is: ``tolerance_range`` gives every tolerance at which the rule lands on the
same z_dim, and ``elbow_margin`` by how many nats the deciding comparison clears its bound at one
tolerance (the pair of z_dims that decides it, so that the margin can be set beside their noise).
Because the range is set by the worst model, often an unconverged small one, ``best_elbow`` is a
second rule that never looks at it: the smallest z_dim whose error lies within ``tolerance``
times the best z_dim's own error above the floor (the lowest error possible: 0, or the BCE floor
on grey levels) of the best error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BEST_RULE", "ELBOW_RULE", "ORIGINAL_ELBOW", "Margin", "best_elbow", "elbow",
           "elbow_margin", "elbow_reached", "elbows", "grid_gap", "tolerance_range"]

ELBOW_RULE = ("the smallest z_dim from which no larger z_dim lowers the error by more than "
              "{pct} % of the whole range of errors across the sweep")

BEST_RULE = ("the smallest z_dim whose error is within {pct} % of the best z_dim's error above "
             "the floor of the best error")

# The original study's verdict: reconstruction "stops improving at about z_dim = 10".
ORIGINAL_ELBOW = 10


def elbow(z_dims: Sequence[int], errors: Sequence[float], tolerance: float = 0.05) -> int:
    """The elbow z_dim of ``errors`` measured at ``z_dims`` (any order)."""
    if len(z_dims) != len(errors) or not z_dims:
        raise ValueError("elbow needs one error per z_dim, and at least one")
    if tolerance < 0:
        raise ValueError(f"elbow needs a tolerance of at least 0, got {tolerance}")
    pairs = sorted(zip(z_dims, errors, strict=True))
    values = [e for _, e in pairs]
    allowed = tolerance * (max(values) - min(values))
    for i, (z_dim, error) in enumerate(pairs[:-1]):
        if error - min(values[i:]) <= allowed:
            return z_dim
    return pairs[-1][0]  # the largest z_dim has nothing left to win: it always qualifies


def elbow_reached(z_dims: Sequence[int], at: int) -> bool:
    """False when the rule lands on the largest z_dim of a sweep of two or more."""
    return len(z_dims) < 2 or at != max(z_dims)


def elbows(z_dims: Sequence[int], errors: Sequence[float],
           tolerances: Sequence[float]) -> list[int]:
    """The elbow at each tolerance."""
    return [elbow(z_dims, errors, t) for t in tolerances]


def _needs(values: Sequence[float]) -> list[float]:
    """For each position i of a sorted sweep: e_i - min(e_i, e_i+1, ...), what it leaves to win."""
    return [error - min(values[i:]) for i, error in enumerate(values)]


def tolerance_range(z_dims: Sequence[int], errors: Sequence[float], at: int
                    ) -> tuple[float, float] | None:
    """The tolerances [low, high) at which the elbow rule lands on ``at`` (None: at none).

    ``high`` is infinite when every larger tolerance gives ``at`` too (``at`` the smallest
    z_dim of the sweep, or every z_dim before it further from the best than any tolerance).
    """
    pairs = sorted(zip(z_dims, errors, strict=True))
    values = [e for _, e in pairs]
    spread = max(values) - min(values)
    index = [z for z, _ in pairs].index(at)
    if spread == 0:
        return (0.0, math.inf) if index == 0 else None
    needs = [n / spread for n in _needs(values)]
    low, high = needs[index], min(needs[:index], default=math.inf)
    return (low, high) if low < high else None


@dataclass(frozen=True)
class Margin:
    """By how much the elbow rule's verdict at one tolerance clears its bound."""

    nats: float  # the smaller of the two clearances below, in the error's unit
    pair: tuple[int, int]  # the two z_dims whose difference decides it (for their noise)


def elbow_margin(z_dims: Sequence[int], errors: Sequence[float], tolerance: float) -> Margin:
    """How far the verdict at ``tolerance`` is from changing.

    The elbow z* qualifies by allowed - (e(z*) - min after it); each z_dim before it fails by
    (e(z) - min after it) - allowed. The margin is the smallest of these, with the z_dim and the
    best z_dim after it that set it; a z_dim that is itself the best from there on qualifies
    at every tolerance and sets no margin (infinite when none does).
    """
    pairs = sorted(zip(z_dims, errors, strict=True))
    zs, values = [z for z, _ in pairs], [e for _, e in pairs]
    allowed = tolerance * (max(values) - min(values))
    at = zs.index(elbow(z_dims, errors, tolerance))
    candidates = []
    for i in range(at + 1):
        after = min(range(i, len(values)), key=lambda j: (values[j], j))
        if after == i:  # nothing left to win after i: it qualifies at every tolerance
            continue
        need = values[i] - values[after]
        candidates.append((allowed - need if i == at else need - allowed, (zs[i], zs[after])))
    if not candidates:  # one z_dim, or a sweep whose best is its first
        return Margin(math.inf, (zs[at], zs[at]))
    nats, pair = min(candidates)
    return Margin(nats, pair)


def best_elbow(z_dims: Sequence[int], errors: Sequence[float], tolerance: float,
               floor: float = 0.0) -> int:
    """The smallest z_dim within ``tolerance`` x (best error - floor) of the best error."""
    if len(z_dims) != len(errors) or not z_dims:
        raise ValueError("best_elbow needs one error per z_dim, and at least one")
    best = min(errors)
    allowed = tolerance * max(best - floor, 0.0)
    return min(z for z, e in zip(z_dims, errors, strict=True) if e - best <= allowed)


def grid_gap(z_dims: Sequence[int], at: int) -> tuple[int, int] | None:
    """(low, high): the z_dims an elbow at ``at`` cannot tell apart, from the one after the sweep's
    previous z_dim up to ``at`` itself; None when the previous z_dim is ``at - 1`` or there is
    none."""
    ordered = sorted(z_dims)
    index = ordered.index(at)
    if index == 0 or ordered[index - 1] == at - 1:
        return None
    return ordered[index - 1] + 1, at
