"""vaelab.data.splitting: the held-out test rule and the validation rule, each seeded alone."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.data.splitting import (
    VAL_SEED,
    default_val_size,
    held_out_order,
    held_out_size,
    hold_out_test,
    val_split,
)


@pytest.mark.parametrize(("n", "size"), [(2, 1), (9, 1), (10, 1), (95, 9), (70_000, 7000),
                                         (1_000_000, 10_000)])
def test_held_out_size(n: int, size: int) -> None:
    assert held_out_size(n) == size


@pytest.mark.parametrize("n", [2, 3, 17, 1000])
def test_hold_out_partitions_every_image_once(n: int) -> None:
    train, test = hold_out_test(n)
    assert len(test) == held_out_size(n)
    assert sorted([*train.tolist(), *test.tolist()]) == list(range(n))
    assert (np.diff(train) > 0).all() and (np.diff(test) > 0).all()


def test_the_held_out_order_depends_on_its_seed_only() -> None:
    np.testing.assert_array_equal(held_out_order(500), held_out_order(500))
    assert not np.array_equal(held_out_order(500), held_out_order(500, seed=1))
    assert not np.array_equal(held_out_order(500), np.arange(500))  # it does shuffle
    rng_state = np.random.get_state()
    np.random.seed(123)  # NumPy's global generator plays no part
    np.testing.assert_array_equal(held_out_order(500), held_out_order(500))
    np.random.set_state(rng_state)


def test_the_validation_rule_is_the_registered_datasets_rule() -> None:
    # The rule load_splits applied before user datasets existed: default_rng(VAL_SEED).
    order = np.random.default_rng(VAL_SEED).permutation(1000)
    train, val = val_split(1000, default_val_size(1000))
    np.testing.assert_array_equal(val, np.sort(order[:100]))
    np.testing.assert_array_equal(train, np.sort(order[100:]))
    assert default_val_size(60_000) == 5000 and default_val_size(900) == 90
