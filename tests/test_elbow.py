"""The elbow rules (vaelab.study.elbow) on sweeps whose verdicts are worked out by hand."""

from __future__ import annotations

import math

import pytest

from vaelab.study.elbow import (
    best_elbow,
    elbow,
    elbow_margin,
    elbow_reached,
    elbows,
    grid_gap,
    tolerance_range,
)


def test_elbow_rule() -> None:
    z_dims = [1, 2, 5, 10, 20]
    assert elbow(z_dims, [140, 125, 95, 80, 77]) == 10  # 3 of a 63-nat range is left after 10
    assert elbow(z_dims, [140, 125, 95, 90, 77]) == 20  # 13 of 63 left after 10: keep going
    assert elbow(z_dims, [140, 100, 99, 98.5, 98]) == 2
    assert elbow(list(reversed(z_dims)), [77, 80, 95, 125, 140]) == 10  # order does not matter
    assert elbow([3], [1.0]) == 3
    for z_dims_, errors in (([1, 2], [1.0]), ([], [])):
        with pytest.raises(ValueError, match=r"^elbow needs one error per z_dim, and at least "
                           r"one$"):
            elbow(z_dims_, errors)


def test_elbow_robustness_range_margin_second_rule_and_grid() -> None:
    """The 100-epoch study's negative ELBO: the elbow at 10 holds from 4.35 % to 26.44 %, by
    0.40 nats at 5 % (z_dim 10 against 20), and the distance-to-best rule agrees at 5 %."""
    z_dims = [1, 2, 5, 10, 20]
    neg_elbo = [161.94, 140.22, 116.67, 103.08, 100.40]
    # z_dim 10 qualifies once 2.68 of the 61.54-nat range is allowed; z_dim 5 once 16.27 is.
    assert tolerance_range(z_dims, neg_elbo, 10) == pytest.approx((2.68 / 61.54, 16.27 / 61.54))
    assert tolerance_range(z_dims, neg_elbo, 20) == pytest.approx((0.0, 2.68 / 61.54))
    assert tolerance_range(z_dims, neg_elbo, 2) == pytest.approx((39.82 / 61.54, 1.0))
    assert tolerance_range(z_dims, neg_elbo, 1) == (1.0, float("inf"))
    # z_dim 3 is left 5 to win, more than z_dim 2 (4): no tolerance makes it the elbow.
    assert tolerance_range([1, 2, 3, 4], [10.0, 5.0, 6.0, 1.0], 3) is None
    margin = elbow_margin(z_dims, neg_elbo, 0.05)
    assert margin.nats == pytest.approx(0.05 * 61.54 - 2.68) and margin.pair == (10, 20)
    # At 10 % z_dim 10 still qualifies by 3.47; z_dim 5 fails by 16.27 - 6.15 = 10.12.
    assert elbow_margin(z_dims, neg_elbo, 0.1).nats == pytest.approx(6.154 - 2.68)
    # At 2.5 % the elbow is 20: nothing decides 20 itself; 10 fails by 2.68 - 1.54.
    low = elbow_margin(z_dims, neg_elbo, 0.025)
    assert low.nats == pytest.approx(2.68 - 0.025 * 61.54) and low.pair == (10, 20)
    single = elbow_margin([3], [1.0], 0.05)
    assert single.nats == float("inf") and single.pair == (3, 3)
    # Distance to the best, relative to the best's error above the floor (45.53): at 5 %,
    # 2.74 nats are allowed and z_dim 10 is 2.68 above the best.
    assert best_elbow(z_dims, neg_elbo, 0.05, floor=45.53) == 10
    assert best_elbow(z_dims, neg_elbo, 0.025, floor=45.53) == 20
    assert best_elbow(z_dims, neg_elbo, 0.05) == 10  # floor 0: 5.02 allowed
    assert best_elbow(z_dims, [157.99, 133.56, 104.16, 83.91, 76.81], 0.05, 45.53) == 20
    # The grid cannot tell 6 from 9: an elbow at 10 lies somewhere in 6 ... 10.
    assert grid_gap(z_dims, 10) == (6, 10)
    assert grid_gap(z_dims, 2) is None and grid_gap(z_dims, 1) is None
    assert grid_gap([1, 2, 3, 4, 8], 4) is None and grid_gap([1, 2, 3, 4, 8], 8) == (5, 8)


def test_the_elbow_rule_at_its_limits() -> None:
    # A tolerance of 0 accepts only a z_dim with nothing left to win; a negative one is refused.
    assert elbow([1, 2, 3], [3.0, 2.0, 1.0], 0.0) == 3
    with pytest.raises(ValueError, match="tolerance"):
        elbow([1, 2], [2.0, 1.0], -0.1)
    # A flat sweep: the smallest z_dim already has nothing left to win.
    assert elbow([1, 2, 5], [4.0, 4.0, 4.0]) == 1


def test_best_elbow_measures_from_the_floor() -> None:
    # Floor 0 (the default): 50 % of the best error, 2.0, allows 1.0, so z_dim 1 (1.0 above the
    # best) qualifies; with the floor at 1.0 only 0.5 is allowed.
    assert best_elbow([1, 2], [3.0, 2.0], 0.5) == 1
    assert best_elbow([1, 2], [3.0, 2.0], 0.5, floor=1.0) == 2
    # The best at its floor allows nothing: only the best itself qualifies, at any tolerance.
    assert best_elbow([1, 2], [45.6, 45.53], 0.5, floor=45.53) == 2
    for z_dims, errors in (([1, 2], [1.0]), ([], [])):
        with pytest.raises(ValueError, match=r"^best_elbow needs one error per z_dim, and at "
                           r"least one$"):
            best_elbow(z_dims, errors, 0.05)


def test_tolerance_range_of_flat_and_tied_sweeps() -> None:
    # A flat sweep: its smallest z_dim is the elbow at every tolerance, the others at none.
    assert tolerance_range([1, 2, 5], [4.0, 4.0, 4.0], 1) == (0.0, math.inf)
    assert tolerance_range([1, 2, 5], [4.0, 4.0, 4.0], 2) is None
    # z_dim 2 reaches the best already, so z_dim 3, as good, is the elbow at no tolerance:
    # the range [0, 0) is empty.
    assert tolerance_range([1, 2, 3], [2.0, 1.0, 1.0], 3) is None
    assert tolerance_range([1, 2, 3], [2.0, 1.0, 1.0], 2) == (0.0, 1.0)


@pytest.mark.parametrize("rule", [
    lambda z, e: tolerance_range(z, e, 1), lambda z, e: elbow_margin(z, e, 0.05)])
def test_one_error_per_z_dim_or_a_refusal(rule) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        rule([1, 2, 3], [3.0, 2.0])


def test_elbows_at_each_tolerance_and_whether_the_sweep_reached_one() -> None:
    z_dims = [1, 2, 5, 10, 20]
    errors = [140, 125, 95, 90, 77]  # 13 of the 63-nat range left after 10
    assert elbows(z_dims, errors, [0.05, 0.25, 0.5]) == [20, 10, 5]
    # The rule landing on the largest z_dim of two or more: still falling, not reached.
    assert not elbow_reached(z_dims, 20)
    assert not elbow_reached([1, 2], 2)
    assert elbow_reached(z_dims, 10) and elbow_reached([1, 2], 1)
    assert elbow_reached([5], 5)  # one z_dim: nothing to fall to
