"""The importance-sampled log-likelihood against exact and known values."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vaelab.cli.main import main
from vaelab.data import load_splits
from vaelab.evaluation.likelihood import estimate_nll, evaluation_pixels, log_likelihood
from vaelab.models import VAE, create_model
from vaelab.pixels import to_float

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The first 2000 training and 40 test images of mnist-sample (shipped with the package)."""
    splits = load_splits("mnist-sample", None, 0)
    train, _ = splits.split("train")
    test, _labels = splits.split("test")
    return torch.from_numpy(train[:2000]), torch.from_numpy(test[:40])


def _train(model: VAE, images: torch.Tensor, steps: int, seed: int = 0) -> VAE:
    """A few hundred Adam steps on dynamically binarised batches: a small but real fit."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pixels = to_float(images)
    for _ in range(steps):
        x = torch.bernoulli(pixels[torch.randint(len(pixels), (64,))])
        optimizer.zero_grad()
        model(x).loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def one_latent_vae(digits: tuple[torch.Tensor, torch.Tensor]) -> VAE:
    torch.manual_seed(0)
    return _train(create_model(name="vae", z_dim=1), digits[0], steps=300)


def _exact_log_px(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """log ∫ p(x|z) N(z; 0, 1) dz on a grid over [-8, 8] (z_dim = 1), and the grid step."""
    grid = torch.linspace(-8.0, 8.0, 32_001, dtype=torch.float64)
    with torch.no_grad():
        logits = model.decode(grid.float()[:, None]).flatten(1).double()  # (G, 784)
    pixels = x.flatten(1).double()
    # log Bernoulli(x | sigmoid(l)) = x * l + log sigmoid(-l), summed over pixels: one matmul.
    log_px_z = pixels @ logits.T + F.logsigmoid(-logits).sum(1)  # (B, G)
    log_joint = log_px_z - 0.5 * (math.log(2 * math.pi) + grid.pow(2))
    step = float(grid[1] - grid[0])
    return torch.logsumexp(log_joint, dim=1) + math.log(step), step


def test_k5000_matches_quadrature_with_one_latent(
    one_latent_vae: VAE, digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images = digits[1][:20]
    x = evaluation_pixels(images, "dynamic")
    exact, step = _exact_log_px(one_latent_vae, x)
    with torch.no_grad():
        _, logvar = one_latent_vae.encode(x)
    # The grid resolves every posterior: its step is far below the narrowest posterior width.
    assert step < float((0.5 * logvar).exp().min()) / 20
    result = estimate_nll(one_latent_vae, images, binarize="dynamic", samples=5000)
    gaps = (result.per_image - exact).abs()
    assert float(gaps.max()) < 0.1, gaps
    assert abs(result.nll + float(exact.mean())) < 0.1
    # The model is trained, not random: far better than 784 * log 2 nats of coin flips.
    assert result.nll < 300


@pytest.mark.parametrize("name", ["vae", "vamp", "hvae", "cvae"])
def test_k1_estimate_is_the_elbo_in_expectation(
    name: str, digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    torch.manual_seed(1)
    model = create_model(name=name, z_dim=4, n_pseudo_inputs=20).eval()
    x = evaluation_pixels(digits[1][:20], "dynamic")
    y = torch.arange(20) % 10
    repeats = 300
    with torch.no_grad():
        weights = model.importance_log_weights(x.repeat(repeats, 1, 1, 1), 1,
                                               y.repeat(repeats)).view(repeats, 20)
        out = model(x.repeat(repeats, 1, 1, 1), y.repeat(repeats), beta=1.0)
    elbo = -(out.recon_nll + out.kl).view(repeats, 20)
    per_image_gap = weights.mean(0) - elbo.mean(0)
    se = math.sqrt(float((weights.var(0) + elbo.var(0)).sum()) / repeats) / 20
    assert se < 1.0  # enough repeats for the comparison to mean something
    assert abs(float(per_image_gap.mean())) < 4 * se, (float(per_image_gap.mean()), se)


def test_estimate_rises_with_k_on_average(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(2)
    model = _train(create_model(name="vae", z_dim=8), digits[0], steps=60)
    images = digits[1][:30]
    means, ses = [], []
    for k in (1, 10, 100):
        result = estimate_nll(model, images, binarize="dynamic", samples=k, seed=k)
        means.append(-result.nll)
        ses.append(result.nll_se)
    for low, high in itertools.pairwise(means):
        assert high > low, means
    # And by more than noise from K = 1 to K = 100 (each estimate is paired on the same images).
    assert means[2] - means[0] > 1.0, means


def test_chunks_bound_the_memory(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = create_model(name="vae", z_dim=3)
    asked: list[tuple[int, int]] = []
    original = model.importance_log_weights

    def spy(x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
        asked.append((k, len(x)))
        return original(x, k, y)

    model.importance_log_weights = spy  # type: ignore[method-assign]
    progress: list[tuple[int, int]] = []
    result = estimate_nll(model, digits[1][:12], samples=5000, batch_size=4, max_rows=2000,
                          progress=lambda done, total: progress.append((done, total)))
    assert max(k * b for k, b in asked) <= 2000
    assert sum(k for k, b in asked) == 3 * 5000  # three batches of four images, K each
    assert result.samples == 5000 and result.n == 12
    assert progress[-1] == (12 * 5000, 12 * 5000)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(progress))


def test_result_units_repeatability_and_mode(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(3)
    model = create_model(name="vae", z_dim=5)
    model.train()
    images = digits[1][:10]
    first = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert model.training
    again = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert torch.equal(first.per_image, again.per_image)
    assert first.nll == pytest.approx(-float(first.per_image.mean()))
    assert first.nll_se == pytest.approx(float(first.per_image.std()) / math.sqrt(10))
    assert first.bits_per_dim == pytest.approx(first.nll / (784 * math.log(2)))
    # The single-batch helper agrees with the driver on the same draws.
    torch.manual_seed(7)
    x = evaluation_pixels(images, "static")
    direct = log_likelihood(model.eval(), x, 20, chunk=20)
    assert torch.allclose(direct, first.per_image)


def test_evaluation_pixels_match_training_evaluation(
    digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    from vaelab.pixels import binarize_once

    images = digits[0][:1500]
    x = evaluation_pixels(images, "dynamic")
    assert set(x.unique().tolist()) == {0.0, 1.0}
    # vaelab.training.loop.evaluate binarises blocks of 1000 with seed start + 1: the same images.
    assert torch.equal(x[1000:], binarize_once(images[1000:], "dynamic", seed=1001))


def test_evaluate_nll_cli(train_args: list[str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *train_args, "--model", "vae", "--binarize", "dynamic"]) == 0
    capsys.readouterr()
    run = str(tmp_path / "run")
    assert main(["evaluate", run, "--nll", "--samples", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nll_samples"] == 20 and report["n"] == 100
    assert 0 < report["nll"] <= report["neg_elbo"] + 1.0
    assert report["nll_se"] > 0
    assert report["bits_per_dim"] == pytest.approx(report["nll"] / (784 * math.log(2)))
    assert main(["evaluate", run, "--nll", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "K=100 (the CPU default)" in out and "(10 images" in out
    assert main(["evaluate", run, "--nll", "--samples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--samples" in err
