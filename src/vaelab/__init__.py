"""vaelab: train, measure and explore variational autoencoders on MNIST-style images.

The public API, importable from ``vaelab`` directly:

* ``TrainConfig`` and ``fit(config, RunOptions(...))``: train one model into a run directory;
* ``load(run_dir)``: the trained model of a run directory, with its config;
* ``evaluate(model, images)``: per-image negative ELBO, reconstruction BCE, KL and MSE;
* ``StudyConfig``, ``run_study(config)`` and ``build_report(study_dir)``: the z_dim study.

Importing the package is cheap: each name imports torch (and the rest) only when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    from vaelab.config import TrainConfig
    from vaelab.evaluation.elbo import evaluate
    from vaelab.runs.rebuild import LoadedRun
    from vaelab.study.config import StudyConfig
    from vaelab.study.run import build_report, run_study
    from vaelab.training.fit import fit
    from vaelab.training.options import RunOptions

__version__ = "0.2.0"
__all__ = [
    "RunOptions",
    "StudyConfig",
    "TrainConfig",
    "VaelabError",
    "__version__",
    "build_report",
    "evaluate",
    "fit",
    "load",
    "run_study",
]

# Public name -> the module that defines it, imported on first use.
_LAZY = {
    "TrainConfig": "vaelab.config",
    "fit": "vaelab.training",
    "RunOptions": "vaelab.training",
    "evaluate": "vaelab.evaluation.elbo",
    "StudyConfig": "vaelab.study.config",
    "run_study": "vaelab.study.run",
    "build_report": "vaelab.study.run",
}


def load(run_dir: str, which: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained model from a run directory (``which`` is "best" or "last")."""
    from vaelab.runs.rebuild import load_run

    return load_run(run_dir, which=which, device=device)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
