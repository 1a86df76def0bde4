"""The per-image ELBO terms of ``vaelab.evaluation.elbo.evaluate`` against an independent
computation (``conftest.reference_elbo``: the Bernoulli likelihood written out, the KL from
``torch.distributions``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import reference_elbo
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.evaluation.elbo import evaluate
from vaelab.models import create_model
from vaelab.pixels import evaluation_pixels

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """1,500 test digits of mnist-sample and their labels: two evaluation blocks of 1,000."""
    splits = load_splits("mnist-sample", None, 0)
    return (torch.from_numpy(splits.test_images[:1500]),
            torch.from_numpy(splits.test_labels[:1500]).long())


def _assert_reports(found: dict[str, float], expected: dict[str, float]) -> None:
    assert found["n"] == expected["n"]
    for key in ("neg_elbo", "recon_bce", "kl", "mse"):
        assert found[key] == pytest.approx(expected[key], rel=1e-5), key


@pytest.mark.parametrize(("name", "binarize"), [("mlp", "none"), ("mlp", "static"),
                                                ("conv", "dynamic"), ("cvae", "none")])
def test_evaluate_reports_the_independently_computed_terms(
        name: str, binarize: str, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    model = create_model(name=name, z_dim=3)
    images, labels = digits
    found = evaluate(model, images, labels, binarize)
    _assert_reports(found, reference_elbo(model, images, labels, binarize))
    # The terms are large enough that a dropped or swapped one shows.
    assert found["recon_bce"] > 100 and found["kl"] > 1e-3


def test_a_single_image_and_a_small_batch_size(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(1)
    model = create_model(name="mlp", z_dim=2)
    images = digits[0]
    _assert_reports(evaluate(model, images[:1]), reference_elbo(model, images[:1]))
    found = evaluate(model, images[:250], binarize="dynamic", batch_size=100, seed=4)
    _assert_reports(found, reference_elbo(model, images[:250], binarize="dynamic", seed=4,
                                          block=100))


def test_evaluate_restores_mode_is_repeatable_and_leaves_the_rng_alone(
        digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    model = create_model(name="mlp", z_dim=3)
    images = digits[0][:50]
    model.train()
    state = torch.get_rng_state()
    first = evaluate(model, images)
    assert model.training
    assert torch.equal(torch.get_rng_state(), state)  # the training stream is untouched
    assert evaluate(model, images) == first
    model.eval()
    evaluate(model, images)
    assert not model.training
    # Another seed draws another posterior sample: the draw really comes from ``seed``.
    assert evaluate(model, images, seed=1)["neg_elbo"] != first["neg_elbo"]


@pytest.mark.parametrize("binarize", ["dynamic", "static"])
def test_every_batch_size_scores_the_same_binary_images(binarize: str) -> None:
    """At evaluation batch 37 and 1000 the ELBO sees the images the likelihood estimate sees."""
    torch.manual_seed(0)
    model = create_model(TrainConfig(model="mlp", z_dim=3).model_config())
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1100, 28, 28),
                                                                 dtype=np.uint8))
    small = evaluate(model, images, binarize=binarize, batch_size=37)
    large = evaluate(model, images, binarize=binarize, batch_size=1000)
    # The pixel MSE decodes the posterior mean: no sampling, so it depends on the pixels alone.
    assert small["mse"] == pytest.approx(large["mse"], rel=1e-6)
    x = evaluation_pixels(images, binarize)
    with torch.no_grad():
        mu, _ = model.encode(x)
        expected = float(((torch.sigmoid(model.decode(mu)) - x) ** 2).mean())
    assert large["mse"] == pytest.approx(expected, rel=1e-5)
    assert small["kl"] == pytest.approx(large["kl"], rel=1e-6)
