"""Sample quality in the digit classifier's feature space: Fréchet distance, precision, recall.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") fits a Gaussian to the Inception features of real and of generated images and
reports the Fréchet distance between the two. Here the features are the 128 hidden units of the
digit classifier (``Classifier.features``), so the numbers are on their own scale: comparable
between models measured with the same classifier and sample counts, never with published FIDs.

One number cannot tell blurry-but-varied samples from sharp-but-repetitive ones, so precision
and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models") are reported beside it: each feature set is turned into a union of balls,
one per sample, whose radius is the distance to its k-th nearest neighbour in the same set.
Precision is the share of generated samples inside the real balls (are samples realistic?),
recall the share of real samples inside the generated balls (is the data's variety covered?).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    from vaelab.evaluation.classifier import Classifier
    from vaelab.models import VAE

__all__ = [
    "DEFAULT_K",
    "DEFAULT_SAMPLES",
    "RealSupport",
    "SampleQuality",
    "feature_quality",
    "frechet_distance",
    "min_samples",
    "precision_recall",
    "prior_images",
    "sample_quality",
]

DEFAULT_SAMPLES = 10_000  # prior draws compared with the test split, as many as MNIST's test set
DEFAULT_K = 3  # neighbour rank of the ball radii; the paper's choice
# Entries of one block of pairwise distances (float64): 4M entries are 32 MB, whatever N is.
BLOCK_ENTRIES = 1 << 22


def min_samples(k: int = DEFAULT_K) -> int:
    """The fewest samples a set may hold: a k-th nearest *other* sample must exist."""
    return k + 1


@dataclass(frozen=True)
class SampleQuality:
    """A model's prior samples compared with real images in classifier-feature space."""

    fd: float  # Fréchet distance between Gaussians fitted to the two feature sets
    precision: float  # share of samples inside the real feature manifold, in [0, 1]
    recall: float  # share of real images inside the samples' feature manifold, in [0, 1]
    n_samples: int  # prior draws decoded
    n_real: int  # real images compared with
    k: int  # neighbour rank that sets each ball's radius

    def to_dict(self) -> dict[str, Any]:
        return {"fd": self.fd, "precision": self.precision, "recall": self.recall,
                "fd_samples": self.n_samples, "fd_real": self.n_real, "pr_k": self.k}


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2:
        raise VaelabError(f"{name} must be a (N, D) array of features, got shape {array.shape}")
    return array


def _covariance(x: np.ndarray) -> np.ndarray:
    if len(x) < 2:
        raise VaelabError(f"a covariance needs at least 2 samples, got {len(x)}; pass more")
    return np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance; rounding's negative eigenvalues become 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # type: ignore[no-any-return]


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance squared between Gaussians fitted to features (N, D).

    ||mu_a - mu_b||² + Tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½), with unbiased covariances. The
    matrix square roots come from symmetric eigendecompositions in float64, negative
    eigenvalues clamped to 0, so singular covariances (dead ReLU units) are handled; the
    result is clamped at 0, which rounding can undershoot for identical sets.
    """
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise VaelabError(f"feature sets differ in width ({a.shape[1]} vs {b.shape[1]}); "
                          "compute both with the same classifier")
    cov_a, cov_b = _covariance(a), _covariance(b)
    diff = a.mean(0) - b.mean(0)
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    # Tr(M^½) of the symmetric PSD M = S_a^½ S_b S_a^½: the sum of its eigenvalues' roots.
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root
    return max(float(distance), 0.0)


def _squared_distances(rows: torch.Tensor, cols: torch.Tensor, cols_sq: torch.Tensor,
                       out: torch.Tensor) -> torch.Tensor:
    """||rows_i - cols_j||² (len(rows), len(cols)) into ``out``; the expansion's rounding is
    clamped at 0."""
    d = torch.addmm(cols_sq[None, :], rows, cols.T, alpha=-2.0, out=out[:len(rows)])
    return d.add_((rows * rows).sum(1)[:, None]).clamp_(min=0.0)


def _blocks(n_rows: int, n_cols: int, block: int) -> range:
    """Starts of row blocks holding at most ``block`` entries (one row at the least)."""
    return range(0, n_rows, max(1, block // max(n_cols, 1)))


def _buffer(starts: range, n_rows: int, n_cols: int) -> torch.Tensor:
    """One block of distances, reused for every block (allocating each anew costs as much as
    the product)."""
    return torch.empty(min(starts.step, n_rows), n_cols, dtype=torch.float64)


def _radii_sq(points: torch.Tensor, k: int, block: int) -> torch.Tensor:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    sq = (points * points).sum(1)
    radii = torch.empty(len(points), dtype=points.dtype)
    starts = _blocks(len(points), len(points), block)
    out = _buffer(starts, len(points), len(points))
    for start in starts:
        d = _squared_distances(points[start:start + starts.step], points, sq, out)
        rows = torch.arange(len(d))
        d[rows, start + rows] = 0.0  # a point's own distance, exactly, so it sorts first
        # Position 0 of each row's k+1 smallest is the point itself; position k its k-th other.
        radii[start:start + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


@dataclass(frozen=True)
class RealSupport:
    """The real features' balls: each point and the squared radius to its k-th neighbour.

    The same for every sample set compared with one real set, so a study computes it once.
    """

    points: torch.Tensor  # (N, D) float64
    radii_sq: torch.Tensor  # (N,) float64
    k: int

    @classmethod
    def of(cls, real: np.ndarray, k: int = DEFAULT_K, block: int = BLOCK_ENTRIES
           ) -> RealSupport:
        points = torch.from_numpy(_as_features(real, "real"))
        _check_pr(len(points), "real", k)
        return cls(points, _radii_sq(points, k, block), k)


def _check_pr(n: int, name: str, k: int) -> None:
    if k < 1:
        raise VaelabError(f"k must be at least 1, got {k}")
    if n < min_samples(k):
        raise VaelabError(f"{name} set has {n} samples; the k={k} nearest-neighbour balls need "
                          f"at least {min_samples(k)}")


def precision_recall(real: np.ndarray | RealSupport, fake: np.ndarray, k: int = DEFAULT_K,
                     block: int = BLOCK_ENTRIES) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features (N, D).

    Every real feature gets a ball reaching its k-th nearest other real feature; precision is
    the share of fake features inside at least one real ball (boundary included). Recall swaps
    the roles: balls around the fake features (radii from the fake set), and the share of real
    features inside one. Distances are computed in float64, ``block`` entries at a time, so
    memory stays bounded whatever the set sizes. ``real`` may be a ``RealSupport`` whose balls
    were computed before (with the same k).
    """
    fake_np = _as_features(fake, "fake")
    _check_pr(len(fake_np), "fake", k)
    support = real if isinstance(real, RealSupport) else RealSupport.of(real, k, block)
    if support.k != k:
        raise VaelabError(f"the real balls were computed with k={support.k}, not {k}")
    real_t, fake_t = support.points, torch.from_numpy(fake_np)
    if real_t.shape[1] != fake_t.shape[1]:
        raise VaelabError(f"feature sets differ in width ({real_t.shape[1]} vs "
                          f"{fake_t.shape[1]}); compute both with the same classifier")
    real_radii, fake_radii = support.radii_sq, _radii_sq(fake_t, k, block)
    # One pass over the fake-to-real distances serves both directions.
    real_sq = (real_t * real_t).sum(1)
    fake_inside = torch.zeros(len(fake_t), dtype=torch.bool)
    real_inside = torch.zeros(len(real_t), dtype=torch.bool)
    starts = _blocks(len(fake_t), len(real_t), block)
    out = _buffer(starts, len(fake_t), len(real_t))
    for start in starts:
        rows = slice(start, start + starts.step)
        d = _squared_distances(fake_t[rows], real_t, real_sq, out)  # (fake block, real)
        fake_inside[rows] = (d <= real_radii[None, :]).any(1)
        real_inside |= (d <= fake_radii[rows, None]).any(0)
    return float(fake_inside.double().mean()), float(real_inside.double().mean())


@torch.no_grad()
def prior_images(model: VAE, n: int, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """Mean images of ``n`` prior draws, float (n, 1, 28, 28) in [0, 1] on the CPU.

    The draws come from a generator seeded with ``seed``; the global RNG is not touched. A
    conditional model gets the labels 0, 1, 2, ... in turn, as in the run's samples.png.
    """
    from vaelab.models.base import eval_mode

    device = next(model.parameters()).device
    with eval_mode(model):
        z = model.sample_prior(n, torch.Generator().manual_seed(seed))
        labels = torch.arange(n, device=device) % model.config.num_classes
        chunks = [model.decode_probs(z[i:i + batch_size], labels[i:i + batch_size]).float().cpu()
                  for i in range(0, n, batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros(0, 1, 28, 28)


def sample_quality(
    model: VAE,
    classifier: Classifier,
    real_images_u8: np.ndarray | torch.Tensor,
    n_samples: int = DEFAULT_SAMPLES,
    k: int = DEFAULT_K,
    seed: int = 0,
) -> SampleQuality:
    """Fréchet distance, precision and recall of ``n_samples`` prior samples against real images.

    The real images are uint8 (N, 28, 28), usually the test split; both sets pass through the
    classifier as float images in [0, 1], the samples as their decoded means.
    """
    _check_samples(n_samples, k)
    from vaelab.pixels import to_float

    real = classifier.features(to_float(torch.as_tensor(real_images_u8).cpu()))
    return feature_quality(real, classifier.features(prior_images(model, n_samples, seed)), k)


def feature_quality(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K,
                    support: RealSupport | None = None) -> SampleQuality:
    """``sample_quality`` from the classifier features of the real images and of the samples.

    For measuring several sample sets against one test set: its features are computed once,
    and with ``support`` (``RealSupport.of(real, k)``) its balls too.
    """
    _check_samples(len(fake), k)
    precision, recall = precision_recall(support if support is not None else real, fake, k)
    return SampleQuality(fd=frechet_distance(real, fake), precision=precision, recall=recall,
                         n_samples=len(fake), n_real=len(real), k=k)


def _check_samples(n_samples: int, k: int) -> None:
    if n_samples < min_samples(k):
        raise VaelabError(f"n_samples must be at least {min_samples(k)} for k={k}, "
                          f"got {n_samples}")
