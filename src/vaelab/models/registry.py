"""The model registry: ``@register_model(name, summary)`` and ``create_model(config)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vaelab.registry import Registry

if TYPE_CHECKING:
    from vaelab.models.base import VAE, ModelConfig

__all__ = ["ModelEntry", "model_registry", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[ModelConfig], VAE]  # config -> freshly initialised model
    summary: str  # one line for --help and `vaelab models`


model_registry: Registry[ModelEntry] = Registry("model")


def register_model(name: str, summary: str) -> Callable[[Callable[..., VAE]], Callable[..., VAE]]:
    def decorator(build: Callable[..., VAE]) -> Callable[..., VAE]:
        model_registry.add(name, ModelEntry(build, summary))
        return build

    return decorator
