"""Latent-space measurements on constructed cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vaelab.study import latent


class LineDecoder(nn.Module):
    """Decodes z to an image whose every pixel holds (z1 + 10) / 20 (and z2 in row 0 if 2-D)."""

    def decode_probs(self, z: torch.Tensor) -> torch.Tensor:
        images = ((z[:, :1] + 10) / 20).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()
        if z.shape[1] > 1:
            images[:, 0, 0, :] = ((z[:, 1:2] + 10) / 20)
        return images


class ThresholdClassifier:
    """Reads z back from the image and labels it by known cut points."""

    def __init__(self, cuts: list[float], digits: list[int]) -> None:
        self.cuts, self.digits = cuts, digits

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        z = images[:, 5, 5].numpy() * 20 - 10
        labels = np.array(self.digits)[np.searchsorted(self.cuts, z, side="right")]
        return labels, np.full(len(z), 0.9)


class QuadrantClassifier:
    """Digit 1 where z1 > 0, else 7; plus 2 where z2 > 0 (read from row 0)."""

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        z1 = images[:, 5, 5].numpy() * 20 - 10
        z2 = images[:, 0, 5].numpy() * 20 - 10
        labels = np.where(z1 > 0, 1, 7) + np.where(z2 > 0, 2, 0)
        return labels, np.ones(len(z1))


def test_digit_intervals_bounds_fall_midway() -> None:
    z = np.linspace(-3, 3, 7)  # -3 -2 -1 0 1 2 3
    intervals = latent.digit_intervals(z, np.array([1, 1, 7, 7, 7, 4, 4]))
    assert [(i.label, i.start, i.end) for i in intervals] == [
        (1, -3.0, -1.5), (7, -1.5, 1.5), (4, 1.5, 3.0)]


def test_digit_map_1d_recovers_known_cut_points() -> None:
    classifier = ThresholdClassifier(cuts=[-1.0, 0.5], digits=[3, 8, 2])
    z, labels, confidence, intervals = latent.digit_map_1d(LineDecoder(), classifier, -3, 3, 601)
    assert len(z) == len(labels) == len(confidence) == 601
    assert [i.label for i in intervals] == [3, 8, 2]
    step = 6 / 600
    assert intervals[0].start == -3.0 and intervals[-1].end == 3.0
    assert abs(intervals[0].end - (-1.0)) <= step
    assert abs(intervals[1].end - 0.5) <= step
    assert intervals[0].end == intervals[1].start
    assert all(abs(i.confidence - 0.9) < 1e-9 for i in intervals)


def test_digit_map_2d_orientation_top_row_is_high_z2() -> None:
    values = np.linspace(-1, 1, 4)
    labels, confidence = latent.digit_map_2d(LineDecoder(), QuadrantClassifier(), values)
    assert labels.shape == confidence.shape == (4, 4)
    # top-left: z1 < 0, z2 > 0 -> 7 + 2; bottom-right: z1 > 0, z2 < 0 -> 1
    assert labels[0, 0] == 9 and labels[0, -1] == 3
    assert labels[-1, 0] == 7 and labels[-1, -1] == 1


def test_grid_points_reading_order() -> None:
    points = latent.grid_points(np.array([0.0, 1.0]), np.array([10.0, 20.0]))
    assert points.tolist() == [[0, 20], [1, 20], [0, 10], [1, 10]]


def test_quantile_values_are_normal_quantiles() -> None:
    values = latent.quantile_values(0.05, 0.95, 3)
    assert values == pytest.approx([-1.6448536, 0.0, 1.6448536], abs=1e-6)


def test_active_units_on_constructed_posterior_means() -> None:
    rng = np.random.default_rng(0)
    spreads = np.array([2.0, 0.7, 0.2, 0.05, 0.0])  # variances 4, 0.49, 0.04, 0.0025, 0
    means = rng.standard_normal((20_000, 5)) * spreads + np.array([1.0, -2.0, 0.0, 3.0, 0.5])
    count, variances = latent.active_units(means, threshold=0.01)
    assert count == 3
    assert variances == pytest.approx(spreads**2, rel=0.05, abs=1e-4)
    assert latent.active_units(means, threshold=1.0)[0] == 1


class HalfDeadEncoder(nn.Module):
    """mu uses the image for units 0 and 1; units 2 and 3 ignore it (posterior collapse)."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = x.flatten(1).mean(1, keepdim=True)
        first = x.flatten(1)[:, :1]
        mu = torch.cat([mean * 10, first * 5, torch.zeros_like(mean), torch.full_like(mean, 2)], 1)
        return mu, torch.zeros_like(mu)


def test_active_units_counts_units_that_encode_the_data() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(500, 28, 28), dtype=np.uint8)
    images[:250] //= 4  # two brightness groups: unit 0 varies strongly
    mu, logvar = latent.posterior_means(HalfDeadEncoder(), images, batch_size=64)
    assert mu.shape == logvar.shape == (500, 4)
    count, variances = latent.active_units(mu)
    assert count == 2
    assert variances[2] == 0 and variances[3] == 0


class LinearVAE(nn.Module):
    """encode: mu = mean pixel in each of two halves; decode: constant image of z1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(1)
        mu = torch.stack([flat[:, :392].mean(1), flat[:, 392:].mean(1)], 1) * self.scale
        return mu, torch.zeros_like(mu)

    def decode_probs(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1].view(-1, 1, 1, 1).expand(-1, 1, 28, 28)


def test_interpolation_runs_straight_between_posterior_means() -> None:
    start = np.zeros((2, 28, 28), np.uint8)
    end = np.full((2, 28, 28), 255, np.uint8)
    rows = latent.interpolate(LinearVAE(), start, end, steps=5)
    assert rows.shape == (10, 28, 28)
    assert rows[:5, 0, 0] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


class UnsureClassifier:
    """Like ThresholdClassifier, but only 0.4 sure on z in [-0.5, 0.5]."""

    def __init__(self) -> None:
        self.inner = ThresholdClassifier(cuts=[-1.0, 0.5], digits=[3, 8, 2])

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        labels, _ = self.inner.predict(images)
        z = images[:, 5, 5].numpy() * 20 - 10
        return labels, np.where(np.abs(z) <= 0.5, 0.4, 0.9)


def test_abstain_marks_unsure_labels_unclear() -> None:
    labels = latent.abstain(np.array([1, 2, 3]), np.array([0.9, 0.5, 0.49]), 0.5)
    assert labels.tolist() == [1, 2, latent.UNCLEAR]


def test_digit_map_1d_abstains_below_the_confidence_threshold() -> None:
    _, labels, _, intervals = latent.digit_map_1d(LineDecoder(), UnsureClassifier(), -3, 3, 601,
                                                  min_confidence=0.5, min_run=2)
    assert [i.label for i in intervals] == [3, 8, latent.UNCLEAR, 2]
    unclear = intervals[2]
    assert unclear.start == pytest.approx(-0.505) and unclear.end == pytest.approx(0.505)
    shares = latent.interval_shares(intervals)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[-1] == pytest.approx(1.01 / 6)  # the unclear stretch
    assert (labels == latent.UNCLEAR).sum() == 101


def test_a_digit_on_a_single_grid_point_is_not_drawn() -> None:
    z = np.linspace(0, 6, 7)
    intervals = latent.digit_intervals(z, np.array([1, 1, 7, 1, 1, 4, 4]), min_run=2)
    assert [(i.label, i.start, i.end) for i in intervals] == [
        (1, 0.0, 1.5), (latent.UNCLEAR, 1.5, 2.5), (1, 2.5, 4.5), (4, 4.5, 6.0)]
    # Neighbouring unclear stretches merge into one.
    labels = np.array([1, 1, 7, latent.UNCLEAR, 3, 4, 4])
    assert [i.label for i in latent.digit_intervals(z, labels, min_run=2)] == [
        1, latent.UNCLEAR, 4]


def test_class_histogram_and_shares_count_unclear_last() -> None:
    labels = np.array([0, 0, 3, latent.UNCLEAR, 9, latent.UNCLEAR])
    assert latent.class_histogram(labels).tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2]
    assert latent.label_shares(labels)[-1] == pytest.approx(2 / 6)


def test_digit_map_2d_abstains() -> None:
    values = np.linspace(-1, 1, 5)
    labels, confidence = latent.digit_map_2d(LineDecoder(), UnsureClassifier(), values, 0.5)
    assert labels.shape == confidence.shape == (5, 5)
    assert (labels[:, 2] == latent.UNCLEAR).all()  # z1 = 0: the unsure stretch
    assert (labels[:, 0] != latent.UNCLEAR).all()


def test_outside_share_counts_grid_points_beyond_the_box() -> None:
    values = np.linspace(-5, 5, 21)  # step 0.5; 13 values in [-3, 3]
    assert latent.outside_share(values, values, (-3, 3, -3, 3)) == pytest.approx(
        1 - 13 * 13 / 441)
    assert latent.outside_share(values, values, (-5, 5, -5, 5)) == 0.0
    # A box narrow in x and wide in y: 5 of the 21 x values, all 3 y values are inside.
    assert latent.outside_share(values, np.array([-1.0, 0.0, 1.0]), (-1, 1, -3, 3)) == \
        pytest.approx(1 - 5 * 3 / 63)


def test_posterior_means_read_the_pixels_the_study_was_trained_on() -> None:
    """A binarised study's latent means come from its binary pixels, not from grey ones."""
    from vaelab.pixels import evaluation_pixels

    images = np.full((3, 28, 28), 153, np.uint8)  # grey 0.6: static binarisation makes it 1
    images[1] = 102  # 0.4: static makes it 0
    grey, _ = latent.posterior_means(HalfDeadEncoder(), images)
    binary, _ = latent.posterior_means(HalfDeadEncoder(), images, "static")
    assert grey[:, 0] == pytest.approx([6.0, 4.0, 6.0], rel=1e-6)
    assert binary[:, 0] == pytest.approx([10.0, 0.0, 10.0])
    # Dynamic binarisation: the same Bernoulli draws as every other evaluation.
    rng = np.random.default_rng(3)
    many = rng.integers(0, 256, size=(1500, 28, 28), dtype=np.uint8)
    drawn, _ = latent.posterior_means(HalfDeadEncoder(), many, "dynamic", batch_size=64)
    expected = evaluation_pixels(torch.from_numpy(many), "dynamic").flatten(1).mean(1) * 10
    assert drawn[:, 0] == pytest.approx(expected.numpy(), rel=1e-6)


def test_a_class_on_a_speck_of_the_plane_is_not_drawn() -> None:
    grid = np.full((6, 6), 3)
    grid[0, 0] = 7  # one point
    grid[4:6, 4:6] = 1  # a 2 x 2 region: four points
    grid[0, 5] = grid[1, 5] = grid[2, 5] = 8  # three in a column
    grid[5, 0] = latent.UNCLEAR
    kept = latent.drop_small_regions(grid, min_region=4)
    assert kept[0, 0] == latent.UNCLEAR and (kept[0:3, 5] == latent.UNCLEAR).all()
    assert (kept[4:6, 4:6] == 1).all() and kept[5, 0] == latent.UNCLEAR
    assert (kept == 3).sum() == (grid == 3).sum()
    # Diagonal neighbours do not connect a region.
    diagonal = np.full((4, 4), 2)
    np.fill_diagonal(diagonal, 5)
    assert (latent.drop_small_regions(diagonal, 2) == 5).sum() == 0
    assert (latent.drop_small_regions(grid, 1) == grid).all()


def test_plane_shares_are_weighted_by_prior_mass_and_by_the_data() -> None:
    values = np.linspace(-5, 5, 11)
    mass = latent.prior_cell_mass(values)
    assert mass.sum() == pytest.approx(1.0)
    # The centre cell [-0.5, 0.5]² holds (Phi(0.5) - Phi(-0.5))² of the prior.
    assert mass[5, 5] == pytest.approx(0.38292492 ** 2, rel=1e-6)
    assert mass[0, 0] == pytest.approx(mass[10, 10]) and mass[0, 0] < 1e-10
    # Reading order: a label on the top row is high z2, as grid_points has it.
    labels = np.where(latent.grid_points(values, values)[:, 1].reshape(11, 11) > 0, 1, 0)
    shares = latent.weighted_shares(labels, mass, n_classes=2)
    assert shares[1] == pytest.approx((1 - 0.38292492) / 2, rel=1e-6)
    assert shares[2] == 0.0
    # Latent means: two in the centre cell, one far outside the grid (counted at its edge).
    means = np.array([[0.1, -0.2], [-0.4, 0.4], [9.0, -9.0]])
    counts = latent.data_cell_counts(values, means)
    assert counts[5, 5] == 2 and counts[10, 10] == 1 and counts.sum() == 3
    unclear = np.full((11, 11), latent.UNCLEAR)
    unclear[5, 5] = 4
    assert latent.weighted_shares(unclear, counts, 10)[[4, 10]] == pytest.approx([2 / 3, 1 / 3])
    assert latent.prior_mass_outside((-1.0, 1.0, -1.0, 1.0)) == pytest.approx(
        1 - 0.68268949 ** 2, rel=1e-6)
    assert latent.prior_mass_outside((-9.0, 9.0, -9.0, 9.0)) == pytest.approx(0.0, abs=1e-12)
