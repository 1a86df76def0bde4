"""Choosing the compute device."""

from __future__ import annotations

import torch

from vaelab.errors import VaelabError

__all__ = ["resolve_device"]


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaelabError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu"
        )
    if name == "mps" and not _mps_available():
        raise VaelabError("--device mps was asked for but MPS is not available; use --device cpu")
    return torch.device(name)
