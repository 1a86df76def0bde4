"""The ELBO terms of a model on a set of images (vaelab.evaluation.elbo)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.evaluation.elbo import evaluate
from vaelab.models import create_model
from vaelab.pixels import evaluation_pixels


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
