"""From stored uint8 images to the float pixels a model sees, with optional binarisation.

Continuous intensities in [0, 1] are the default (the study's setting). For the likelihood
literature, ``dynamic`` resamples every pixel as Bernoulli(intensity) each time a batch is drawn
(Salakhutdinov & Murray 2008), and ``static`` thresholds at 0.5. Evaluation data are binarised
once with a fixed seed, so every model is scored on the same binary test set:
``evaluation_pixels`` binarises in fixed blocks of ``EVAL_BLOCK`` images, each from its own seed,
so the images scored do not depend on how a caller batches them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["BINARIZERS", "EVAL_BINARIZE_SEED", "EVAL_BLOCK", "binarize_once", "evaluation_pixels",
           "to_float"]

EVAL_BINARIZE_SEED = 123
# Evaluation images are binarised in blocks of this many, block b (starting at image s) with
# seed s + 1: the ELBO, the likelihood and the latent maps all score the same binary images.
EVAL_BLOCK = 1000


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W) -> float32 (B, 1, H, W) in [0, 1]."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)


def _dynamic(x: torch.Tensor) -> torch.Tensor:
    return torch.bernoulli(x)


def _static(x: torch.Tensor) -> torch.Tensor:
    return (x > 0.5).to(x.dtype)


# Applied to every training batch; "none" keeps the intensities.
BINARIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "none": None,
    "dynamic": _dynamic,
    "static": _static,
}


def binarize_once(images: torch.Tensor, mode: str, seed: int = EVAL_BINARIZE_SEED) -> torch.Tensor:
    """uint8 images -> float (N, 1, H, W) for evaluation, binarised reproducibly per ``mode``."""
    x = to_float(images)
    if mode == "dynamic":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.bernoulli(x.cpu(), generator=generator).to(x.device)
    fn = BINARIZERS[mode]
    return fn(x) if fn is not None else x


def evaluation_pixels(images: torch.Tensor, binarize: str) -> torch.Tensor:
    """uint8 (N, H, W) -> the float (N, 1, H, W) images that evaluation scores (binarised once).

    Whatever the caller's batch size, image i is binarised by the block of ``EVAL_BLOCK`` images
    it falls in, so every evaluation of the same images sees the same pixels.
    """
    blocks = [binarize_once(images[start:start + EVAL_BLOCK], binarize, seed=start + 1)
              for start in range(0, len(images), EVAL_BLOCK)]
    if not blocks:
        return to_float(images)
    return torch.cat(blocks)
