"""Model architectures, created by name through the registry.

A model of your own enters the same way as vaelab's: register a builder (or a ``VAE`` subclass)
with ``@register_model(name, summary)`` in a plugin file or module, and load it with
``load_plugin`` (``--plugin`` on the command line) or declare it in the entry-point group
``vaelab.models`` of an installed package. ``from_modules`` makes a VAE of two plain modules.
See docs/your-own.md.
"""

from __future__ import annotations

from typing import Any

from vaelab.models.base import VAE, ModelConfig, VAEOutput
from vaelab.models.modules import from_modules
from vaelab.models.origin import ModelOrigin
from vaelab.models.plugins import load_plugin
from vaelab.models.registry import model_registry, register_model

# Importing each architecture module registers its models.
from vaelab.models import conv, mlp  # noqa: F401  isort: skip
from vaelab.models import burda2, cvae, hvae, iwae, vamp  # noqa: F401  isort: skip

__all__ = ["VAE", "ModelConfig", "ModelOrigin", "VAEOutput", "create_model", "from_modules",
           "load_plugin", "model_registry", "register_model"]


def create_model(config: ModelConfig | None = None, **overrides: Any) -> VAE:
    """Build a model from its config; ``None`` overrides are dropped so defaults stay defaults.

    What the builder returns is checked (``vaelab.models.contract.build_checked``).
    """
    from vaelab.models.contract import build_checked

    base = config.to_dict() if config is not None else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    resolved = ModelConfig.from_dict(base)
    return build_checked(model_registry.get(resolved.name), resolved)
