"""burda2: Burda et al.'s two stochastic layers, their sizes, bound, weights and round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.evaluation.likelihood import estimate_nll
from vaelab.models import create_model
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 28, 28, generator=generator) > 0.7).float()


def test_the_layers_are_the_papers() -> None:
    # Section 5: 784-100-100-100(z1) and 100-50-50-50(z2), mirrored by the generative network.
    model = create_model(name="burda2", z_dim=50)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()
              if name.endswith("weight")}
    assert shapes == {
        "x_to_z1.0.weight": (100, 784), "x_to_z1.2.weight": (100, 100),
        "to_q1.weight": (200, 100),  # mean and log-variance of 100 units
        "z1_to_z2.0.weight": (50, 100), "z1_to_z2.2.weight": (50, 50),
        "to_q2.weight": (100, 50),
        "z2_to_z1.0.weight": (50, 50), "z2_to_z1.2.weight": (50, 50),
        "to_p1.weight": (200, 50),
        "z1_to_x.0.weight": (100, 100), "z1_to_x.2.weight": (100, 100),
        "to_logits.weight": (784, 100)}
    assert all(isinstance(m, torch.nn.Tanh) for m in model.x_to_z1[1::2])


def test_k1_is_the_elbo_and_beta_weights_the_kl() -> None:
    torch.manual_seed(0)
    model = create_model(name="burda2", z_dim=6)
    x = _batch()
    for beta in (0.0, 0.5, 2.0):
        torch.manual_seed(1)
        out = model(x, beta=beta)
        assert torch.allclose(out.loss, (out.recon_nll + beta * out.kl).mean(), rtol=1e-5)


def test_the_k_sample_bound_is_tighter_and_one_step_lowers_it() -> None:
    x = _batch(64)
    losses = {}
    for k in (1, 50):
        torch.manual_seed(0)
        model = create_model(name="burda2", z_dim=6, iw_samples=k)
        torch.manual_seed(3)
        losses[k] = model(x).loss.item()
    assert losses[50] < losses[1] - 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(4)
        return model(x).loss

    before = loss()
    before.backward()
    optimizer.step()
    assert loss().item() < before.item()


def test_the_k1_likelihood_estimate_is_the_elbo_in_expectation() -> None:
    torch.manual_seed(0)
    model = create_model(name="burda2", z_dim=4).eval()
    x = _batch(8)
    with torch.no_grad():
        weights = torch.stack([model.importance_log_weights(x, 1)[0] for _ in range(300)])
        elbos = torch.stack([-(o.recon_nll + o.kl) for o in (model(x) for _ in range(300))])
    gap = (weights.mean(0) - elbos.mean(0)).abs()
    spread = ((weights.var(0) + elbos.var(0)) / 300).sqrt()
    assert (gap < 4 * spread).all(), (gap, spread)


def test_trains_saves_and_scores(tiny_dataset: str, tiny_dataset_dir: Path,
                                 tmp_path: Path) -> None:
    config = TrainConfig(model="burda2", z_dim=4, iw_samples=3, dataset=tiny_dataset,
                         data_dir=str(tiny_dataset_dir), binarize="dynamic", epochs=1,
                         batch_size=64, device="cpu", out=str(tmp_path / "run"))
    result = fit(config, RunOptions(pictures=False))
    loaded = load_run(tmp_path / "run", which="last")
    result.model.eval()
    x = _batch(5)
    torch.manual_seed(7)
    ours = result.model.importance_log_weights(x, 4)
    torch.manual_seed(7)
    assert torch.equal(ours, loaded.model.importance_log_weights(x, 4))
    images = (x[:, 0] * 255).to(torch.uint8)
    nll = estimate_nll(loaded.model, images, binarize="static", samples=20)
    assert 0 < nll.nll < 784 * 0.7  # finite, and better than coin flips per pixel
