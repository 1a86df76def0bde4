"""Images of known kind that the measures are checked against: noise, shuffled digits, blends.

A score means little without what the same measure gives on inputs whose answer is known. These
builders make those inputs from a dataset's own images, reproducibly from a seed:

- ``uniform_noise``: every pixel uniform in [0, 1] — no digit at all;
- ``shuffled``: real images with their pixels permuted by one fixed permutation — the same
  grey levels and ink as digits, none of their shape;
- ``blends``: the pixel average of two images of *different* classes — a person sees two digits
  at once, or none;
- ``blurred``: a Gaussian blur of real images — still recognisable when mild.

They serve twice: as the reference rows beside precision, recall and the Fréchet distance, and
as the cases on which the classifier's abstention is measured. The classifier's "none of these"
class is trained on pairs of digits and noise made by ``training_negatives`` from *training*
images (random weights, blur and contrast, as its real images get from ``training_positives``);
the probes above are drawn from the test images, with other seeds.
Every builder returns float32 images (N, 1, 28, 28) in [0, 1] on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["blends", "blurred", "shuffled", "training_negatives", "training_positives",
           "uniform_noise"]


def _float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]; float images pass unchanged."""
    x = torch.as_tensor(images)
    if not x.is_floating_point():
        x = x.to(torch.float32).div_(255.0)
    return x.unsqueeze(1) if x.dim() == 3 else x


def uniform_noise(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images of independent uniform pixels in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=generator)


def shuffled(images_u8: np.ndarray | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The images with their pixels moved by one permutation drawn from ``seed``."""
    x = _float(images_u8)
    order = torch.randperm(x[0].numel(), generator=torch.Generator().manual_seed(seed))
    return x.flatten(1)[:, order].view_as(x)


def _pairs(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` index pairs (a, b) whose labels differ."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("blends need images of at least two classes")
    first, second = np.empty(n, np.int64), np.empty(n, np.int64)
    filled = 0
    while filled < n:
        a = rng.integers(0, len(labels), size=2 * (n - filled))
        b = rng.integers(0, len(labels), size=2 * (n - filled))
        keep = np.flatnonzero(labels[a] != labels[b])[:n - filled]
        first[filled:filled + len(keep)], second[filled:filled + len(keep)] = a[keep], b[keep]
        filled += len(keep)
    return first, second


def blends(images_u8: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` pixel averages (a + b) / 2 of two images of different classes."""
    a, b = _pairs(labels, n, np.random.default_rng(seed))
    x = _float(images_u8)
    return (x[a] + x[b]) / 2


def blurred(images: np.ndarray | torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """The images (uint8 or float) blurred by a Gaussian of ``sigma`` pixels (separable, edges
    padded with 0)."""
    x = _float(images)
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    rows = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
    return torch.nn.functional.conv2d(rows, kernel.view(1, 1, -1, 1), padding=(radius, 0))


_TRAINING_BLURS = (0.0, 0.5, 1.0, 1.5)  # sigmas of the blur both kinds of training image get
_BLEND_WEIGHTS = (0.35, 0.65)  # the range of w in the blends w a + (1 - w) b of the negatives
_VARIED_SHARE = 1.0  # the share of real training images blurred and dimmed


def _vary(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image blurred by one of ``_TRAINING_BLURS`` and scaled by a contrast in [0.5, 1]:
    so that neither sharpness nor ink alone tells a real image from a refused one."""
    which = torch.randint(len(_TRAINING_BLURS), (len(x),), generator=generator)
    out = x.clone()
    for i, sigma in enumerate(_TRAINING_BLURS):
        chosen = (which == i).nonzero().flatten().to(x.device)
        if sigma > 0 and len(chosen):
            out[chosen] = blurred(x[chosen], sigma)
    contrast = 0.5 + 0.5 * torch.rand(len(x), 1, 1, 1, generator=generator)
    return out * contrast.to(x.device)


def training_positives(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A training batch (float (B, 1, 28, 28)) as the classifier learns it: the first
    ``_VARIED_SHARE`` of it blurred by 0 to 1.5 pixels and scaled by a contrast in [0.5, 1],
    each image keeping its label."""
    n = round(_VARIED_SHARE * len(images))
    return torch.cat([_vary(images[:n], generator), images[n:]])


def training_negatives(images: torch.Tensor, labels: torch.Tensor, n: int,
                       generator: torch.Generator) -> torch.Tensor:
    """``n`` images for the "none of these" class, made from a training batch.

    Two thirds are two batch images of different classes at once: a third blends
    w a + (1 - w) b with w uniform in [0.35, 0.65] (neither dominates), rescaled to full ink, and
    a third overlays max(a, b); the rest is uniform noise. All of them get the blur and contrast
    of ``training_positives``, so that only content tells them apart. ``images`` are float
    (B, 1, 28, 28); the result is on their device.
    """
    device = images.device
    n_pairs = 2 * n // 3
    a = torch.randint(len(images), (4 * n_pairs + 4,), generator=generator).to(device)
    b = torch.randint(len(images), (4 * n_pairs + 4,), generator=generator).to(device)
    differ = labels[a] != labels[b]
    a, b = a[differ][:n_pairs], b[differ][:n_pairs]
    half = len(a) // 2
    low, high = _BLEND_WEIGHTS
    weight = (low + (high - low) * torch.rand(half, 1, 1, 1, generator=generator)).to(device)
    mixed = weight * images[a[:half]] + (1 - weight) * images[b[:half]]
    mixed = mixed / mixed.amax((1, 2, 3), keepdim=True).clamp(min=1e-6)
    overlaid = torch.maximum(images[a[half:]], images[b[half:]])
    noise = torch.rand(n - len(a), 1, 28, 28, generator=generator).to(device)
    return _vary(torch.cat([mixed, overlaid, noise]), generator)
