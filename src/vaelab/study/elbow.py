"""Where reconstruction error stops improving as z_dim grows, by a stated rule.

Rule: with errors e(z) measured at increasing z_dims, the elbow is the smallest z_dim from
which no larger z_dim improves the error by more than ``tolerance`` times the whole improvement
seen across the sweep, max(e) - min(e). With the default 5 %, it is the point after which at
most 5 % of the sweep's gain is left to win.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ELBOW_RULE", "elbow"]

ELBOW_RULE = ("the smallest z_dim from which no larger z_dim lowers the error by more than "
              "{pct:g} % of the whole range of errors across the sweep")


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
