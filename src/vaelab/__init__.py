"""vaelab: train, measure and explore variational autoencoders on MNIST-style images.

Importing the package is cheap: torch and the plotting stack are imported only by the
functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    from vaelab.runs.checkpoint import LoadedRun

__version__ = "0.1.0"
__all__ = ["VaelabError", "__version__", "load"]


def load(run_dir: str, which: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained model from a run directory (``which`` is "best" or "last")."""
    from vaelab.runs.checkpoint import load_run

    return load_run(run_dir, which=which, device=device)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
