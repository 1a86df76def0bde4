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
from vaelab.errors import VaelabError
from vaelab.evaluation.elbo import evaluate
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
    """log w = log p(x, z) - log q(z | x) at z ~ q has the ELBO as its exact expectation.

    Both are computed on the same draws (the same seed), so log p(x | z) cancels and what is
    left, log p(z) - log q(z | x) + KL, is zero-mean noise of a few tenths of a nat: its mean
    over 6,000 draws must sit within 4 of its own standard errors of zero, and that error is
    small enough (< 0.02 nats) that a term off by a few hundredths of a nat fails.
    """
    torch.manual_seed(1)
    model = create_model(name=name, z_dim=4, n_pseudo_inputs=20).eval()
    x = evaluation_pixels(digits[1][:20], "dynamic")
    y = torch.arange(20) % 10
    repeats = 300
    xs, ys = x.repeat(repeats, 1, 1, 1), y.repeat(repeats)
    with torch.no_grad():
        torch.manual_seed(5)
        weights = model.importance_log_weights(xs, 1, ys).view(-1).double()
        torch.manual_seed(5)
        out = model(xs, ys, beta=1.0)
    elbo = -(out.recon_nll + out.kl).double()
    gap = weights - elbo  # (6000,), zero in expectation
    se = float(gap.std()) / math.sqrt(len(gap))
    assert se < 0.02, se
    assert abs(float(gap.mean())) <= 4 * se + 1e-4, (float(gap.mean()), se)


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


def _record_chunks(model: VAE) -> list[tuple[int, int]]:
    """(samples, images) of every chunk the model is asked to weigh, as they are asked."""
    asked: list[tuple[int, int]] = []
    original = model.importance_log_weights

    def spy(x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
        asked.append((k, len(x)))
        return original(x, k, y)

    model.importance_log_weights = spy  # type: ignore[method-assign]
    return asked


def test_chunks_bound_the_memory(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = create_model(name="vae", z_dim=3)
    asked = _record_chunks(model)
    progress: list[tuple[int, int]] = []
    result = estimate_nll(model, digits[1][:12], samples=5000, batch_size=4, max_rows=2000,
                          progress=lambda done, total: progress.append((done, total)))
    assert max(k * b for k, b in asked) <= 2000
    assert sum(k for k, b in asked) == 3 * 5000  # three batches of four images, K each
    assert result.samples == 5000 and result.n == 12
    assert progress[-1] == (12 * 5000, 12 * 5000)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(progress))


class _KnownWeights(VAE):
    """A model whose log weights are known: image i's log w is ``-10 * pixel(0, 0)`` for
    every sample, unless ``per_sample`` gives the weights of successive samples instead."""

    def __init__(self, per_sample: list[float] | None = None) -> None:
        super().__init__(create_model(name="vae", z_dim=1).config)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device
        self.per_sample = per_sample
        self.drawn = 0

    def importance_log_weights(self, x: torch.Tensor, k: int,
                               y: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_sample is not None:
            values = self.per_sample[self.drawn:self.drawn + k]
            self.drawn += k
            return torch.tensor(values, dtype=torch.float64)[:, None].expand(k, len(x))
        return (-10 * (x[:, 0, 0, 0] * 255).round().double()).expand(k, len(x))


def _images(first_pixels: list[int]) -> torch.Tensor:
    images = torch.zeros(len(first_pixels), 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.tensor(first_pixels, dtype=torch.uint8)
    return images


def test_nll_standard_error_and_bits_per_dim_by_hand() -> None:
    # log p(x) = -100, -110, -120, -90: mean -105; deviations 5, -5, -15, 15, so the sample
    # variance is (25 + 25 + 225 + 225) / 3 = 500 / 3 and the standard error sqrt(500/3) / 2;
    # bits per dimension 105 / (784 ln 2) = 105 / 543.4273895589971.
    result = estimate_nll(_KnownWeights(), _images([10, 11, 12, 9]), samples=7, batch_size=3)
    assert result.per_image.tolist() == pytest.approx([-100.0, -110.0, -120.0, -90.0], abs=1e-9)
    assert (result.n, result.samples) == (4, 7)
    assert result.nll == pytest.approx(105.0, rel=1e-12)
    assert result.nll_se == pytest.approx(6.454972243679028, rel=1e-12)
    assert result.bits_per_dim == pytest.approx(0.19321808583334332, rel=1e-12)
    assert result.to_dict() == {"n": 4, "nll_samples": 7, "nll": result.nll,
                                "nll_se": result.nll_se, "bits_per_dim": result.bits_per_dim}
    # Two images, log p(x) = -100 and -110: sample standard deviation sqrt(50), so the
    # standard error sqrt(50) / sqrt(2) = 5.
    two = estimate_nll(_KnownWeights(), _images([10, 11]), samples=2)
    assert two.nll_se == pytest.approx(5.0, rel=1e-12)
    one = estimate_nll(_KnownWeights(), _images([10]), samples=3)
    assert one.nll == pytest.approx(100.0) and math.isnan(one.nll_se)  # no spread from one image


def test_chunks_fold_into_the_mean_of_the_weights() -> None:
    # Four samples with weights 1, 2, 3, 6 in chunks of 3 and 1: log of their mean, log 3.
    model = _KnownWeights(per_sample=[0.0, math.log(2), math.log(3), math.log(6)])
    told: list[int] = []
    estimate = log_likelihood(model, torch.zeros(2, 1, 28, 28), 4, chunk=3, on_chunk=told.append)
    assert estimate.dtype == torch.float64
    assert estimate.tolist() == pytest.approx([math.log(3)] * 2, rel=1e-12)
    assert told == [3, 1]
    with pytest.raises(VaelabError, match="--samples must be at least 1"):
        log_likelihood(model, torch.zeros(2, 1, 28, 28), 0)


def test_log_likelihood_draws_a_thousand_samples_a_chunk_by_default() -> None:
    told: list[int] = []
    x = _images([10, 11]).unsqueeze(1).double() / 255  # pixels as the model reads them
    estimate = log_likelihood(_KnownWeights(), x, 2500, on_chunk=told.append)
    assert told == [1000, 1000, 500]
    assert estimate.tolist() == pytest.approx([-100.0, -110.0], abs=1e-9)


def test_result_is_repeatable_and_restores_the_mode(
        digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(3)
    model = create_model(name="vae", z_dim=5)
    model.train()
    images = digits[1][:10]
    first = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert model.training
    again = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert torch.equal(first.per_image, again.per_image)
    assert not torch.equal(first.per_image,
                           estimate_nll(model, images, binarize="static", samples=20,
                                        seed=8).per_image)
    # The single-batch helper agrees with the driver on the same draws.
    torch.manual_seed(7)
    x = evaluation_pixels(images, "static")
    direct = log_likelihood(model.eval(), x, 20, chunk=20)
    assert torch.allclose(direct, first.per_image)


def test_the_defaults_are_the_published_protocol_and_seed_zero(
        digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(3)
    model = create_model(name="vae", z_dim=5)
    images = digits[1][:3]
    default = estimate_nll(model, images, binarize="static")
    assert default.samples == 5000  # K = 5000, as Burda et al. score
    assert torch.equal(default.per_image,
                       estimate_nll(model, images, binarize="static", samples=5000,
                                    seed=0).per_image)


def test_the_likelihood_scores_the_images_the_elbo_scores(
    digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """vaelab.evaluation.elbo.evaluate and estimate_nll binarise the same 1,500 images into the
    same binary pixels (two blocks of 1,000 and 500, each with its own seed)."""
    torch.manual_seed(0)
    model = create_model(name="vae", z_dim=2)
    seen: dict[str, list[torch.Tensor]] = {"elbo": [], "nll": []}
    forward, weights = model.forward, model.importance_log_weights

    def record_forward(x: torch.Tensor, *args: object, **kw: object) -> object:
        seen["elbo"].append(x.clone())
        return forward(x, *args, **kw)  # type: ignore[arg-type]

    def record_weights(x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
        seen["nll"].append(x.clone())
        return weights(x, k, y)

    model.forward = record_forward  # type: ignore[method-assign]
    model.importance_log_weights = record_weights  # type: ignore[method-assign]
    images = digits[0][:1500]
    evaluate(model, images, binarize="dynamic")
    estimate_nll(model, images, binarize="dynamic", samples=1)
    scored_by_elbo, scored_by_nll = torch.cat(seen["elbo"]), torch.cat(seen["nll"])
    assert scored_by_elbo.shape == scored_by_nll.shape == (1500, 1, 28, 28)
    assert set(scored_by_nll.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(scored_by_elbo, scored_by_nll)
    # Binarised, not thresholded: the grey pixels were drawn, each block from its own seed.
    grey = (images > 0) & (images < 255)
    assert not torch.equal(scored_by_nll[:, 0][grey], (images[grey] > 127).float())
    assert not torch.equal(scored_by_nll[:500], scored_by_nll[1000:])


# The refusal of a non-finite estimate, word for word: it names the cause a user can check.
NOT_FINITE = (r"^the likelihood estimate is not finite; the model's weights may hold NaN or "
              r"infinite values$")


def test_a_conditional_model_needs_labels_and_a_broken_model_is_named() -> None:
    with pytest.raises(VaelabError, match=r"^a conditional model needs the labels of the "
                       r"images it scores$"):
        estimate_nll(create_model(name="cvae", z_dim=2), _images([1, 2]), samples=2)
    broken = _KnownWeights(per_sample=[0.0, math.nan])
    with pytest.raises(VaelabError, match=NOT_FINITE):
        estimate_nll(broken, _images([1]), samples=2)
    with pytest.raises(VaelabError, match=r"^there are no images to evaluate; choose a "
                       r"non-empty split$"):
        estimate_nll(_KnownWeights(), _images([]), samples=2)


@pytest.mark.parametrize(("n", "samples", "max_rows", "expected"), [
    # 12 images fit in one batch of 30 rows: 2 samples of all 12 at a time (30 // 12).
    (12, 7, 30, [(2, 12), (2, 12), (2, 12), (1, 12)]),
    # One row at a time: batches of one image, one sample each.
    (3, 2, 1, [(1, 1)] * 6),
    # Never more than 100 images in a batch, whatever the rows allow.
    (150, 2, None, [(2, 100), (2, 50)]),
])
def test_default_batches_fill_the_rows_with_at_most_100_images(
        n: int, samples: int, max_rows: int | None, expected: list[tuple[int, int]]) -> None:
    model = _KnownWeights()
    asked = _record_chunks(model)
    estimate_nll(model, _images([1] * n), samples=samples, max_rows=max_rows)
    assert asked == expected


@pytest.mark.parametrize("log_weight", [-math.inf, math.inf])
def test_an_infinite_estimate_is_refused_as_a_nan_is(log_weight: float) -> None:
    with pytest.raises(VaelabError, match=NOT_FINITE):
        estimate_nll(_KnownWeights(per_sample=[log_weight] * 2), _images([1]), samples=2)


class _LabelWeights(_KnownWeights):
    """A conditional model whose log weight for an image is minus the label it is given."""

    conditional = True

    def importance_log_weights(self, x: torch.Tensor, k: int,
                               y: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        return (-y.double()).expand(k, len(x))


def test_a_conditional_model_scores_each_image_with_its_own_label() -> None:
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    result = estimate_nll(_LabelWeights(), _images([0] * len(labels)), labels, samples=2,
                          batch_size=3)
    assert result.per_image.tolist() == (-labels).tolist()


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


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_estimate_leaves_that_gpus_random_stream_alone(
        digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    # The samples are drawn on the GPU: the fork must save and restore its generator (not
    # only the CPU's), and repeated calls must draw the same samples.
    device = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(3)
    model = create_model(name="vae", z_dim=5).to(device)
    images = digits[1][:10].to(device)
    torch.cuda.manual_seed(11)
    before = torch.cuda.get_rng_state(device)
    first = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert torch.equal(torch.cuda.get_rng_state(device), before)
    again = estimate_nll(model, images, binarize="static", samples=20, seed=7)
    assert torch.equal(first.per_image, again.per_image)
    assert first.per_image.device.type == "cpu" and first.per_image.dtype == torch.float64
