"""Training: one run lifecycle for single models, stacked sweeps and torchrun processes."""

from __future__ import annotations

from vaelab.training.loop import fit

__all__ = ["fit"]
