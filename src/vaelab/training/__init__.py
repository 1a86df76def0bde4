"""Training: one run lifecycle for single models, stacked sweeps and torchrun processes.

``fit(config)`` trains one run directory; ``fit_many(configs)`` trains several, stacking those
that can share a step; ``RunOptions`` carries resume, progress, stop and picture settings.
"""

from __future__ import annotations

from vaelab.training.fit import fit, fit_many
from vaelab.training.lifecycle import FitResult, TrainingInterrupted
from vaelab.training.options import Progress, RunOptions

__all__ = ["FitResult", "Progress", "RunOptions", "TrainingInterrupted", "fit", "fit_many"]
