"""The per-image loss terms of a trained model on a set of images."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.errors import VaelabError
from vaelab.losses import pixel_mse
from vaelab.models import VAE
from vaelab.models.base import eval_mode
from vaelab.pixels import evaluation_pixels

__all__ = ["bce_floor", "evaluate"]


@torch.no_grad()
def evaluate(
    model: VAE,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    binarize: str = "none",
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Per-image means over uint8 ``images``: neg_elbo, recon_bce and kl in nats, mse per pixel.

    One posterior sample per image, drawn from a fixed seed so repeated evaluations agree and
    the training RNG stream is left untouched. Binarised pixels come from ``evaluation_pixels``,
    so every batch size scores the same binary images as the likelihood estimate does. ``mse``
    compares the image with the decoding of the posterior mean. Conditional models are scored
    with ``labels``; the others ignore them. The model's train/eval mode is restored afterwards.
    """
    device = images.device
    totals = torch.zeros(4, dtype=torch.float64)
    devices = [device.index or 0] if device.type == "cuda" else []
    pixels_all = evaluation_pixels(images, binarize)
    with eval_mode(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch_size):
            x = pixels_all[start : start + batch_size]
            y = labels[start : start + batch_size] if labels is not None else None
            out = model(x, y, beta=1.0)
            sums = [(out.recon_nll + out.kl).sum(), out.recon_nll.sum(), out.kl.sum(),
                    pixel_mse(model.decode(out.mu, y), x).sum()]
            totals += torch.stack(sums).double().cpu()
    n = len(images)
    pixels = images[0].numel() if n else 1
    values = (totals / max(n, 1)).tolist()
    return {
        "n": n,
        "neg_elbo": values[0],
        "recon_bce": values[1],
        "kl": values[2],
        "mse": values[3] / pixels,
    }


def bce_floor(images_u8: np.ndarray | torch.Tensor) -> float:
    """The lowest reconstruction BCE any model can reach on grey-level images, nats per image.

    BCE against a target intensity x is minimised by predicting x itself, where it equals the
    binary entropy H(x) = -x log x - (1 - x) log(1 - x) (Gibbs' inequality); summed over an
    image's pixels and averaged over the images. Binary pixels have a floor of 0, so only for
    binarised data is the BCE a negative log-likelihood; on grey levels it is not.
    """
    pixels = np.asarray(images_u8.cpu() if isinstance(images_u8, torch.Tensor) else images_u8)
    if pixels.dtype != np.uint8:
        raise VaelabError(f"bce_floor takes the stored uint8 images, got {pixels.dtype}")
    if len(pixels) == 0:
        return 0.0
    p = np.arange(256, dtype=np.float64) / 255.0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    entropy[[0, 255]] = 0.0  # 0 log 0 = 0
    counts = np.bincount(pixels.ravel(), minlength=256)
    return float(counts @ entropy) / len(pixels)
