"""The images of known kind the measures are checked against (vaelab.evaluation.probes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.evaluation import probes


def _digits(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 4
    images = np.zeros((n, 28, 28), np.uint8)
    for i, label in enumerate(labels):  # class c: a bar in rows 4 + 4c .. 7 + 4c
        images[i, 4 + 4 * label:8 + 4 * label, 5:23] = 200 + rng.integers(0, 55)
    return images, labels


def test_blends_average_two_images_of_different_classes() -> None:
    images, labels = _digits()
    mixed = probes.blends(images, labels, 200, seed=3)
    assert mixed.shape == (200, 1, 28, 28) and mixed.dtype == torch.float32
    # Every blend holds two bars at half ink, in the rows of two different classes.
    for blend in mixed[:, 0]:
        rows = np.flatnonzero(blend.numpy().max(1) > 0)
        assert len(rows) == 8 and len({(r - 4) // 4 for r in rows}) == 2
        assert 0.35 < float(blend.max()) <= 0.5
    assert torch.equal(mixed, probes.blends(images, labels, 200, seed=3))
    with pytest.raises(ValueError, match="two classes"):
        probes.blends(images, np.zeros(len(images)), 5)


def test_shuffled_keeps_every_pixel_value_and_moves_them_alike() -> None:
    images, _ = _digits()
    moved = probes.shuffled(images, seed=1)
    flat = torch.from_numpy(images).float().div(255).flatten(1)
    assert torch.equal(moved.flatten(1).sort(1).values, flat.sort(1).values)
    assert not torch.equal(moved.flatten(1), flat)
    # One permutation for all: where image 0 moved pixel p, image 1 moved it too.
    order = torch.randperm(784, generator=torch.Generator().manual_seed(1))
    assert torch.equal(moved.flatten(1), flat[:, order])


def test_blur_keeps_the_ink_and_noise_is_uniform() -> None:
    images, _ = _digits()
    soft = probes.blurred(images, 1.0)
    sharp = torch.from_numpy(images).float().div(255)
    # The bars lie away from the border, so a normalised kernel keeps their ink.
    assert soft.sum((1, 2, 3)) == pytest.approx(sharp.sum((1, 2)), rel=1e-4)
    assert float(soft.max()) < float(sharp.max())
    noise = probes.uniform_noise(500, seed=2)
    assert noise.shape == (500, 1, 28, 28) and float(noise.min()) >= 0 and float(noise.max()) < 1
    assert float(noise.mean()) == pytest.approx(0.5, abs=0.01)


def test_training_negatives_and_positives_keep_their_shape_and_range() -> None:
    images, labels = _digits(64)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    negatives = probes.training_negatives(x, y, 16, generator)
    positives = probes.training_positives(x, generator)
    assert negatives.shape == (16, 1, 28, 28) and positives.shape == x.shape
    for batch in (negatives, positives):
        assert float(batch.min()) >= 0 and float(batch.max()) <= 1
    # Dimmed: a positive keeps its bar, at half to full contrast.
    assert (positives.amax((1, 2, 3)) >= 0.5 * 200 / 255 * 0.5).all()
