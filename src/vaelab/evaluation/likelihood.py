"""Test log-likelihood by importance sampling (Burda, Grosse & Salakhutdinov 2015, eq. 8).

    log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k | x),   z_k ~ q(z | x)

The estimate is a lower bound in expectation that tightens as K grows; K = 1 is the ELBO. The K
samples are drawn in chunks and folded into a running log-sum-exp, so memory is set by the chunk
(``max_rows`` decoded images at a time), not by K: K = 5000 fits on any device. Each model supplies
its log weights through ``VAE.importance_log_weights(x, k, y)``, so hierarchical models and learned
priors are scored with their own log q and log p.

Results are per image in nats (the literature's unit), with bits per dimension
nll / (D ln 2) and the standard error of the mean across images.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vaelab.errors import VaelabError
from vaelab.models import VAE
from vaelab.models.base import eval_mode
from vaelab.pixels import evaluation_pixels

__all__ = ["LikelihoodResult", "estimate_nll", "evaluation_pixels", "log_likelihood"]

# Image-samples decoded at once: about 0.2 GB of logits on a GPU, 25 MB on a CPU.
DEFAULT_MAX_ROWS = {"cuda": 1 << 16, "cpu": 1 << 13}


@dataclass(frozen=True)
class LikelihoodResult:
    """The importance-sampled negative log-likelihood of a set of images."""

    n: int  # images scored
    samples: int  # importance samples K per image
    nll: float  # mean -log p(x) in nats per image
    nll_se: float  # standard error of that mean across images (nats)
    bits_per_dim: float  # nll / (pixels * ln 2)
    per_image: torch.Tensor  # (n,) float64 log p(x) estimates, on the CPU

    def to_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "nll_samples": self.samples, "nll": self.nll, "nll_se": self.nll_se,
                "bits_per_dim": self.bits_per_dim}


def log_likelihood(
    model: VAE,
    x: torch.Tensor,
    samples: int,
    y: torch.Tensor | None = None,
    chunk: int = 1000,
    on_chunk: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """log p(x) estimates for a batch x (B, 1, H, W) with K = ``samples``, shape (B,) float64.

    Draws ``chunk`` samples per call of the model and folds them into a running log-sum-exp;
    ``on_chunk(k)`` is told after each chunk how many samples it held. Runs under no_grad and
    draws from the global RNG (callers seed it).
    """
    if samples < 1:
        raise VaelabError(f"--samples must be at least 1, got {samples}")
    running = torch.full((len(x),), -math.inf, dtype=torch.float64, device=x.device)
    done = 0
    with torch.no_grad():
        while done < samples:
            k = min(chunk, samples - done)
            log_w = model.importance_log_weights(x, k, y).double()  # (k, B)
            running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
            done += k
            if on_chunk is not None:
                on_chunk(k)
    return running - math.log(samples)


def estimate_nll(
    model: VAE,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    binarize: str = "none",
    samples: int = 5000,
    batch_size: int | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LikelihoodResult:
    """Importance-sampled -log p(x) over uint8 ``images`` (N, H, W), in nats per image.

    ``max_rows`` bounds the image-samples decoded at once (default per device); ``batch_size``
    images share each chunk (default: as many as fit, at most 100). ``progress(done, total)``
    is called after every chunk, counting image-samples. Conditional models are scored on
    log p(x | y) with the given labels. The RNG is seeded with ``seed`` inside a fork, so the
    caller's random stream is untouched and repeated calls agree; train/eval mode is restored.
    """
    device = images.device
    rows = max_rows or DEFAULT_MAX_ROWS.get(device.type, DEFAULT_MAX_ROWS["cpu"])
    n = len(images)
    batch = batch_size or max(1, min(100, n, rows))
    chunk = max(1, min(samples, rows // batch))
    if model.conditional and labels is None:
        raise VaelabError("a conditional model needs the labels of the images it scores")
    if n == 0:
        raise VaelabError("there are no images to evaluate; choose a non-empty split")
    x_all = evaluation_pixels(images, binarize)
    total, done = n * samples, 0
    estimates: list[torch.Tensor] = []
    devices = [device.index or 0] if device.type == "cuda" else []
    with eval_mode(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, n, batch):
            x = x_all[start:start + batch]
            y = labels[start:start + batch] if labels is not None else None

            def tell(k: int, images_in_batch: int = len(x)) -> None:
                nonlocal done
                done += k * images_in_batch
                if progress is not None:
                    progress(done, total)

            estimates.append(log_likelihood(model, x, samples, y, chunk, tell).cpu())
    log_px = torch.cat(estimates)
    if not torch.isfinite(log_px).all():
        raise VaelabError("the likelihood estimate is not finite; the model's weights may hold "
                          "NaN or infinite values")
    nll = float(-log_px.mean())
    se = float(log_px.std() / math.sqrt(n)) if n > 1 else float("nan")
    pixels = x_all[0].numel()
    return LikelihoodResult(n=n, samples=samples, nll=nll, nll_se=se,
                            bits_per_dim=nll / (pixels * math.log(2)), per_image=log_px)
