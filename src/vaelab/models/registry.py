"""The model registry: ``@register_model(name, summary)`` and ``create_model(config)``.

vaelab's own architectures and a user's plugins register the same way. Each entry keeps where
its code came from (``ModelOrigin``): the plugin being imported when it registered, or vaelab.
Installed plugins (the entry-point group ``vaelab.models``) are imported before the registry's
first lookup, never at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vaelab.errors import VaelabError
from vaelab.models.origin import ModelOrigin, loading_origin
from vaelab.models.user_code import defined_at
from vaelab.registry import Registry

if TYPE_CHECKING:
    from vaelab.models.base import VAE, ModelConfig

__all__ = ["ModelEntry", "model_registry", "register_model"]

# A model's name is typed on command lines and written into run directories.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[ModelConfig], VAE]  # config -> freshly initialised model
    summary: str  # one line for --help and `vaelab models`
    origin: ModelOrigin | None = None  # where the code came from; None: told by the builder


def _discover_installed() -> None:
    from vaelab.models.plugins import load_installed

    load_installed()


model_registry: Registry[ModelEntry] = Registry(
    "model", discover=_discover_installed,
    hint="; a model of your own is loaded with --plugin FILE.py or MODULE (see docs/your-own.md)")


def _origin_of_new(build: Callable[..., VAE]) -> ModelOrigin | None:
    """The plugin being imported, vaelab for its own modules, else None (told when asked)."""
    loading = loading_origin()
    if loading is not None:
        return loading
    module = getattr(build, "__module__", "") or ""
    if module == "vaelab" or module.startswith("vaelab."):
        from vaelab import __version__

        return ModelOrigin("vaelab", module=module, version=__version__)
    return None


def _registered_by(entry: ModelEntry) -> str:
    origin = entry.origin
    source = f" ({origin.describe()})" if origin is not None else ""
    return f"{defined_at(entry.build)}{source}"


def register_model(name: str, summary: str) -> Callable[[Callable[..., VAE]], Callable[..., VAE]]:
    """Register ``build(config) -> VAE`` (a function or a VAE subclass) under ``name``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise VaelabError(f"model name {name!r} is not usable on a command line; use up to 64 "
                          "letters, digits and - _ . +, starting with a letter or digit")
    if not isinstance(summary, str):
        raise VaelabError(f"model {name!r}: its summary must be a one-line string, got "
                          f"{type(summary).__name__}")

    def decorator(build: Callable[..., VAE]) -> Callable[..., VAE]:
        if not callable(build):
            raise VaelabError(f"register_model({name!r}) decorates {type(build).__name__}; "
                              "expected a function config -> VAE, or a VAE subclass")
        entry = ModelEntry(build, " ".join(summary.split()), _origin_of_new(build))
        earlier = model_registry.entries(discover=False).get(name)
        if earlier is not None:
            raise VaelabError(f"model {name!r} is registered twice: by {_registered_by(earlier)} "
                              f"and by {_registered_by(entry)}; give one of them another name")
        model_registry.add(name, entry)
        return build

    return decorator
