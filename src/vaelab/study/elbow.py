"""Where an error stops improving as z_dim grows, by a stated rule.

Rule: with errors e(z) measured at increasing z_dims, the elbow is the smallest z_dim from
which no larger z_dim improves the error by more than ``tolerance`` times the whole improvement
seen across the sweep, max(e) - min(e). With 5 %, it is the point after which at most 5 % of the
sweep's gain is left to win.

The verdict depends on the tolerance and on the sweep's range, which its smallest z_dim sets;
the study therefore reports it for several tolerances and on more than one measure. When the
rule lands on the largest z_dim of a sweep of two or more, the error was still falling by more
than the tolerance at the sweep's last step: the elbow was *not reached* within the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ELBOW_RULE", "ORIGINAL_ELBOW", "elbow", "elbow_reached", "elbows"]

ELBOW_RULE = ("the smallest z_dim from which no larger z_dim lowers the error by more than "
              "{pct} % of the whole range of errors across the sweep")

# The original study's verdict: reconstruction "stops improving at about z_dim = 10".
ORIGINAL_ELBOW = 10


def elbow(z_dims: Sequence[int], errors: Sequence[float], tolerance: float = 0.05) -> int:
    """The elbow z_dim of ``errors`` measured at ``z_dims`` (any order)."""
    if len(z_dims) != len(errors) or not z_dims:
        raise ValueError("elbow needs one error per z_dim, and at least one")
    pairs = sorted(zip(z_dims, errors, strict=True))
    values = [e for _, e in pairs]
    allowed = tolerance * (max(values) - min(values))
    for i, (z_dim, error) in enumerate(pairs):
        if error - min(values[i:]) <= allowed:
            return z_dim
    return pairs[-1][0]  # unreachable: the last point always qualifies


def elbow_reached(z_dims: Sequence[int], at: int) -> bool:
    """False when the rule lands on the largest z_dim of a sweep of two or more."""
    return len(z_dims) < 2 or at != max(z_dims)


def elbows(z_dims: Sequence[int], errors: Sequence[float],
           tolerances: Sequence[float]) -> list[int]:
    """The elbow at each tolerance."""
    return [elbow(z_dims, errors, t) for t in tolerances]
