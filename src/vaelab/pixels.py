"""From stored uint8 images to the float pixels a model sees, with optional binarisation.

Continuous intensities in [0, 1] are the default (the study's setting). For the likelihood
literature, ``dynamic`` resamples every pixel as Bernoulli(intensity) each time a batch is drawn
(Salakhutdinov & Murray 2008), and ``static`` thresholds at 0.5. Evaluation data are binarised
once with a fixed seed, so every model is scored on the same binary test set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["BINARIZERS", "EVAL_BINARIZE_SEED", "binarize_once", "to_float"]

EVAL_BINARIZE_SEED = 123


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
