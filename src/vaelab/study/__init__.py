"""The latent-space study: a z_dim sweep, a digit classifier, latent measurements and a report.

``vaelab study`` trains one ordinary run directory per z_dim (``STUDY_DIR/z1``, ``z2`` ...),
measures each model (test losses, active units, 1-D and 2-D latent maps, prior samples scored
by a CNN classifier) and writes ``report.html`` and ``report.md``. The submodules import torch;
this package file does not.
"""

from __future__ import annotations

__all__: list[str] = []
