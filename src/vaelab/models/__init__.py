"""Model architectures, created by name through the registry."""

from __future__ import annotations

from typing import Any

from vaelab.models.base import VAE, ModelConfig, VAEOutput
from vaelab.models.registry import model_registry, register_model

# Importing each architecture module registers its models.
from vaelab.models import conv, mlp  # noqa: F401  isort: skip
from vaelab.models import burda2, cvae, hvae, iwae, vamp  # noqa: F401  isort: skip

__all__ = ["VAE", "ModelConfig", "VAEOutput", "create_model", "model_registry", "register_model"]


def create_model(config: ModelConfig | None = None, **overrides: Any) -> VAE:
    """Build a model from its config; ``None`` overrides are dropped so defaults stay defaults."""
    base = config.to_dict() if config is not None else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    resolved = ModelConfig.from_dict(base)
    return model_registry.get(resolved.name).build(resolved)
