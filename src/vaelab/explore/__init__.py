"""The interactive latent-space explorer: a trained decoder and its latent space in one HTML page.

``write_explorer(run_dir)`` writes ``explorer.html``; the page runs the decoder in JavaScript.
Importing this package is light; torch is imported by the functions that need it.
"""

from __future__ import annotations

from vaelab.explore.build import ExplorerResult, write_explorer

__all__ = ["ExplorerResult", "write_explorer"]
