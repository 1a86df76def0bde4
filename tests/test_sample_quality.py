"""Sample quality: the Fréchet distance and precision/recall against closed forms and constructed
point clouds, then on real digits through the trained classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import sample_classifier
from vaelab.data import load_splits
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import HIDDEN_UNITS, Classifier
from vaelab.evaluation.sample_quality import (
    SampleQuality,
    feature_quality,
    frechet_distance,
    min_samples,
    precision_recall,
    prior_images,
    sample_quality,
)
from vaelab.models import VAE, create_model
from vaelab.pixels import to_float

pytestmark = pytest.mark.usefixtures("one_thread")


def with_moments(rng: np.random.Generator, n: int, mean: np.ndarray,
                 cov: np.ndarray) -> np.ndarray:
    """n samples whose mean and (unbiased) covariance are exactly ``mean`` and ``cov``."""
    x = rng.normal(size=(n, len(mean)))
    x -= x.mean(0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False)))
    return (x @ whiten.T) @ np.linalg.cholesky(cov).T + mean  # type: ignore[no-any-return]


# --- Fréchet distance -----------------------------------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    mean_a, mean_b = np.array([0.0, 1.0, -2.0, 3.0]), np.array([1.0, 1.0, 0.5, -1.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([2.0, 1.0, 1.0, 0.01])
    a = with_moments(rng, 500, mean_a, np.diag(var_a))
    b = with_moments(rng, 700, mean_b, np.diag(var_b))
    # ||Δμ||² + Σ (√a_i − √b_i)²
    expected = ((mean_a - mean_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_correlated_gaussians_in_two_dimensions() -> None:
    """For 2x2 matrices Tr (S_a S_b)^½ = √(tr(S_a S_b) + 2 √(det S_a det S_b))."""
    rng = np.random.default_rng(1)
    cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov_b = np.array([[0.5, -0.3], [-0.3, 3.0]])
    a = with_moments(rng, 400, np.zeros(2), cov_a)
    b = with_moments(rng, 400, np.array([3.0, -4.0]), cov_b)
    trace_root = np.sqrt(np.trace(cov_a @ cov_b)
                         + 2 * np.sqrt(np.linalg.det(cov_a) * np.linalg.det(cov_b)))
    expected = 25.0 + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_identity_symmetry_and_translation() -> None:
    rng = np.random.default_rng(2)
    a = np.maximum(rng.normal(size=(300, 32)) @ rng.normal(size=(32, 32)), 0.0)
    a[:, :5] = 0.0  # dead units: a singular covariance, as ReLU features often have
    b = np.maximum(rng.normal(size=(250, 32)) @ rng.normal(size=(32, 32)), 0.0)
    scale = np.trace(np.cov(a, rowvar=False))
    assert 0.0 <= frechet_distance(a, a) <= 1e-9 * scale
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)
    shift = rng.normal(size=32)
    assert frechet_distance(a, a + shift) == pytest.approx((shift ** 2).sum(), rel=1e-6)
    assert frechet_distance(a, b) > 0.1 * scale


def test_frechet_distance_rejects_mismatched_or_too_few_features() -> None:
    with pytest.raises(VaelabError, match="width"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(VaelabError, match="at least 2 samples"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(VaelabError, match=r"\(N, D\)"):
        frechet_distance(np.zeros(5), np.zeros(5))


# --- precision and recall -------------------------------------------------------------------


def test_precision_recall_of_identical_and_disjoint_sets() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(400, 8))
    assert precision_recall(points, points.copy()) == (1.0, 1.0)
    assert precision_recall(points, rng.normal(size=(300, 8)) + 100.0) == (0.0, 0.0)


def test_precision_recall_on_a_hand_made_line() -> None:
    """k=1 on a line: every real ball has radius 1; the outlier at 10 gets a huge fake ball."""
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    fake = np.array([[0.5], [0.7], [10.0]])  # fake radii: 0.2, 0.2 and 9.3
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 3)  # 10 is outside every real ball
    assert recall == pytest.approx(4 / 5)  # 1, 2, 3, 4 lie within 9.3 of 10; 0 lies in none
    # A point exactly on a ball's boundary counts as inside.
    assert precision_recall(real, np.array([[5.0], [5.5]]), k=1)[0] == 0.5
    # On the boundary in float64, 0.1² = 0.010000000000000002 from both sides; a radius kept
    # in float32 (0.0099999998) would leave the fake points outside.
    assert precision_recall(np.array([[0.0], [0.1]]), np.array([[-0.1], [-0.1]]), k=1) == (
        1.0, 0.0)


def test_a_fake_set_covering_half_the_support() -> None:
    """Grids on a line, spacing h = 0.001: inner balls (k=3) reach 2h, the two end balls 3h."""
    real = (np.arange(1000) / 1000)[:, None]  # 0.000 ... 0.999
    fake = (0.1005 + np.arange(500) / 1000)[:, None]  # 0.1005 ... 0.5995, half the span
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == 1.0  # every fake point is 0.0005 from a real one
    # Real points covered: 0.098 ... 0.602, the fake span widened by the end balls' 3h.
    assert recall == 505 / 1000
    # Random clouds agree, up to the gaps that k-NN balls leave between clusters.
    rng = np.random.default_rng(4)
    precision, recall = precision_recall(rng.random((3000, 1)), 0.1 + 0.5 * rng.random((1500, 1)))
    assert precision >= 0.95 and 0.45 <= recall <= 0.53


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray,
                                 k: int) -> tuple[float, float]:
    """The paper's definition written directly, all pairs at once, for small sets."""
    def radii(points: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(points[:, None] - points[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    cross = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # (fake, real)
    precision = (cross <= radii(real)[None, :]).any(1).mean()
    recall = (radii(fake)[None, :] >= cross.T).any(1).mean()
    return float(precision), float(recall)


@pytest.mark.parametrize("block", [1, 37, 10_000, 1 << 22])
def test_blocked_distances_match_the_definition(block: int) -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(120, 6))
    fake = rng.normal(size=(90, 6)) * 1.3 + 0.4
    for k in (1, 3, 5):
        assert precision_recall(real, fake, k, block=block) == pytest.approx(
            brute_force_precision_recall(real, fake, k), abs=1e-12)


def _refusal(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(VaelabError) as info:
        call()
    return str(info.value)


def test_the_refusals_name_the_set_at_fault_word_for_word() -> None:
    width = ("feature sets differ in width (3 vs 4); compute both with the same classifier")
    assert _refusal(lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))) == width
    assert _refusal(lambda: precision_recall(np.zeros((5, 3)), np.zeros((5, 4)), k=1)) == width
    shape = "{} must be a (N, D) array of features, got shape (5,)"
    assert _refusal(lambda: frechet_distance(np.zeros(5), np.zeros((5, 3)))) == shape.format("a")
    assert _refusal(lambda: frechet_distance(np.zeros((5, 3)), np.zeros(5))) == shape.format("b")
    assert _refusal(lambda: precision_recall(np.zeros(5), np.zeros((5, 3)))) == \
        shape.format("real")
    assert _refusal(lambda: precision_recall(np.zeros((5, 3)), np.zeros(5))) == \
        shape.format("fake")
    few = "{} set has 3 samples; the k=3 nearest-neighbour balls need at least 4"
    assert _refusal(lambda: precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)) == \
        few.format("real")
    assert _refusal(lambda: precision_recall(np.zeros((10, 2)), np.zeros((3, 2)), k=3)) == \
        few.format("fake")


def test_precision_recall_needs_more_than_k_samples() -> None:
    assert min_samples(3) == 4
    with pytest.raises(VaelabError, match="at least 4"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
    with pytest.raises(VaelabError, match="k must be at least 1"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 2)), k=0)


# --- on real digits -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(classifier_cache: Path) -> Classifier:
    """mnist-sample's classifier, cached across test sessions (conftest.classifier_cache)."""
    return sample_classifier(classifier_cache)[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """2000 training and the 2000 test digits of mnist-sample, uint8."""
    splits = load_splits("mnist-sample", None, 0)
    return splits.train_images[:2000], splits.test_images


def test_features_are_the_penultimate_layer(classifier: Classifier,
                                            digits: tuple[np.ndarray, np.ndarray]) -> None:
    images = to_float(torch.from_numpy(digits[1][:300]))
    features = classifier.features(images, batch_size=128)
    assert features.shape == (300, HIDDEN_UNITS) and features.dtype == np.float64
    assert (features >= 0).all()  # after the ReLU
    last = classifier.model.head[-1]
    assert isinstance(last, torch.nn.Linear)
    logits = torch.from_numpy(features).float() @ last.weight.T + last.bias
    assert torch.allclose(torch.softmax(logits, 1), classifier.probabilities(images), atol=1e-5)
    assert classifier.features(images[:0]).shape == (0, HIDDEN_UNITS)


def test_real_digits_score_close_and_noise_scores_far(
        classifier: Classifier, digits: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = digits
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=train.shape, dtype=np.uint8)
    shuffled = train.reshape(len(train), -1)[:, rng.permutation(784)].reshape(train.shape)

    def features(images: np.ndarray) -> np.ndarray:
        return classifier.features(to_float(torch.from_numpy(images)))

    real = features(test)
    held_out = frechet_distance(real, features(train))
    precision, recall = precision_recall(real, features(train))
    # Two samples of 2000 from one distribution in 128 dimensions: the k=3 balls leave gaps,
    # so neither reaches exactly 1.
    assert precision >= 0.75 and recall >= 0.75
    for other in (noise, shuffled):
        fake = features(other)
        assert frechet_distance(real, fake) >= 10 * held_out
        assert precision_recall(real, fake)[1] <= 0.05  # no real digit is near a fake one


def _fit(model: VAE, images: np.ndarray, steps: int) -> VAE:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pixels = to_float(torch.from_numpy(images))
    for _ in range(steps):
        optimizer.zero_grad()
        model(pixels[torch.randint(len(pixels), (64,))]).loss.backward()
        optimizer.step()
    return model.eval()


def test_a_trained_vae_scores_better_than_an_untrained_one(
        classifier: Classifier, digits: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = digits
    scores = {}
    for steps in (1, 300):
        torch.manual_seed(0)  # the same initial network both times
        model = _fit(create_model(name="mlp", z_dim=8), train, steps)
        scores[steps] = sample_quality(model, classifier, test, n_samples=2000)
    assert scores[300].fd < 0.5 * scores[1].fd
    assert scores[300].precision > scores[1].precision
    assert (scores[300].n_samples, scores[300].n_real, scores[300].k) == (2000, 2000, 3)


def test_sample_quality_is_seeded_and_leaves_the_global_rng_alone(
        classifier: Classifier, digits: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    model = create_model(name="mlp", z_dim=4).eval()
    state = torch.get_rng_state()
    first = sample_quality(model, classifier, digits[1][:200], n_samples=200, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert sample_quality(model, classifier, digits[1][:200], n_samples=200, seed=7) == first
    assert sample_quality(model, classifier, digits[1][:200], n_samples=200, seed=8) != first
    assert set(first.to_dict()) == {"fd", "precision", "recall", "fd_samples", "fd_real", "pr_k"}
    assert isinstance(first, SampleQuality) and first.to_dict()["fd_samples"] == 200
    # k reaches the balls: k = 4 neighbours, as asked, not the default 3.
    four = sample_quality(model, classifier, digits[1][:200], n_samples=200, seed=7, k=4)
    assert four.k == 4 and four.precision >= first.precision and four.recall >= first.recall
    with pytest.raises(VaelabError, match="n_samples must be at least 4"):
        sample_quality(model, classifier, digits[1][:200], n_samples=3)
    # From features computed once (a study's test set, several models): the same numbers.
    real = classifier.features(to_float(torch.from_numpy(digits[1][:200])))
    fake = classifier.features(prior_images(model, 200, seed=7))
    assert feature_quality(real, fake) == first
    with pytest.raises(VaelabError, match="n_samples must be at least 4"):
        feature_quality(real, fake[:3])


def test_prior_images_of_a_conditional_model_cycle_through_the_classes() -> None:
    torch.manual_seed(0)
    model = create_model(name="cvae", z_dim=3).eval()
    images = prior_images(model, 25, seed=1, batch_size=10)
    z = model.sample_prior(25, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.decode_probs(z, torch.arange(25) % 10)
    assert images.shape == (25, 1, 28, 28)
    assert torch.allclose(images, expected)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_the_real_balls_computed_once_give_the_same_precision_and_recall() -> None:
    from vaelab.evaluation.sample_quality import RealSupport

    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 8)), rng.normal(0.3, 1.2, size=(250, 8))
    support = RealSupport.of(real, k=4)
    assert precision_recall(support, fake, k=4) == precision_recall(real, fake, k=4)
    assert precision_recall(support, fake, k=4, block=1000) == precision_recall(real, fake, k=4)
    with pytest.raises(VaelabError, match="computed with k=4"):
        precision_recall(support, fake, k=3)
