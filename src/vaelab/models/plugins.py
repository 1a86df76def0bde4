"""Plugins: models from a file or module the user names, or from an installed package.

* ``load_plugin("my_vae.py")`` or ``load_plugin("my_package.vae")`` imports the plugin once per
  process (a file again when its content changed); every model it registers with
  ``@vaelab.models.register_model`` is attributed to it (its ``ModelOrigin``). The command
  line's ``--plugin`` calls it.
* ``load_installed()`` imports what installed packages declare in the entry-point group
  ``vaelab.models`` (found through ``importlib.metadata``, as pytest finds its plugins). The
  model registry calls it before its first lookup, so a command that needs no model imports
  nothing; ``VAELAB_DISABLE_PLUGIN_AUTOLOAD=1`` turns it off.
* ``require_model(name, recorded, where)`` is what loading a run asks: it never imports what a
  run directory names; it explains which plugin supplies a missing model, and warns once when
  the plugin's code changed since the run was trained.

Every failure is one VaelabError line that names the plugin.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError
from vaelab.models.origin import ModelOrigin, registering_from
from vaelab.models.registry import ModelEntry, model_registry
from vaelab.models.user_code import describe_exception
from vaelab.notice import warn

__all__ = [
    "AUTOLOAD_OFF",
    "ENTRY_POINT_GROUP",
    "MissingPluginError",
    "Plugin",
    "load_installed",
    "load_plugin",
    "loaded_plugins",
    "origin_of",
    "require_model",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vaelab.models"
AUTOLOAD_OFF = "VAELAB_DISABLE_PLUGIN_AUTOLOAD"  # set (to anything but "" or "0"): no autoload

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: what was asked for, where its code is, the models it registered."""

    spec: str  # as given: a file path or a module name
    origin: ModelOrigin
    models: tuple[str, ...]


class MissingPluginError(VaelabError):
    """A run's model is not registered; the message names the plugin that supplies it."""


# Plugins loaded in this process, by resolved file path or module name.
_loaded: dict[str, Plugin] = {}
# (model, what changed) already warned about: a report loading ten runs warns once.
_warned: set[tuple[str, str]] = set()


def loaded_plugins() -> list[Plugin]:
    """The plugins loaded so far in this process, in load order."""
    return list(_loaded.values())


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec or Path(spec).is_file()


def load_plugin(spec: str | os.PathLike[str]) -> Plugin:
    """Import a plugin file (``my_vae.py``) or module (``my_package.vae``) and its models."""
    text = os.fspath(spec)
    if _is_file_spec(text):
        return _load_file(text)
    if not _MODULE_NAME.fullmatch(text):
        raise VaelabError(f"--plugin {text}: neither a .py file nor a module name; give the "
                          "path of a Python file (my_vae.py) or a dotted module (my_package.vae)")
    return _load_module(text)


def _registered_from(origin: ModelOrigin) -> tuple[str, ...]:
    return tuple(name for name, entry in model_registry.entries(discover=False).items()
                 if entry.origin is origin)


def _forget(origin: ModelOrigin) -> None:
    for name in _registered_from(origin):
        model_registry.discard(name)


def _imported(spec: str, origin: ModelOrigin, run: Any) -> Plugin:
    """Run the import ``run()`` with registrations attributed to ``origin``."""
    try:
        with registering_from(origin):
            run()
    except VaelabError as exc:
        _forget(origin)
        raise VaelabError(f"--plugin {spec}: {exc}") from None
    except (Exception, SystemExit) as exc:
        _forget(origin)
        raise VaelabError(f"--plugin {spec}: importing it raised "
                          f"{describe_exception(exc)}") from None
    models = _registered_from(origin)
    if not models:
        raise VaelabError(f"--plugin {spec}: it registered no models; decorate a builder "
                          "(config -> VAE) or a VAE subclass with "
                          "@vaelab.models.register_model(name, summary)")
    return Plugin(spec, origin, models)


def _load_file(spec: str) -> Plugin:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise VaelabError(f"--plugin {spec}: no such file ({path}); give the path of the "
                          "Python file that registers your model")
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise VaelabError(f"--plugin {spec}: cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(source).hexdigest()
    key = str(path)
    earlier = _loaded.get(key)
    if earlier is not None:
        if earlier.origin.sha256 == digest:
            return earlier
        _forget(earlier.origin)  # edited since it was loaded: load the new content instead
        sys.modules.pop(earlier.origin.module or "", None)
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"_vaelab_plugin_{stem}_{digest[:8]}"
    origin = ModelOrigin("file", module=module_name, path=key, sha256=digest)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None:
        raise VaelabError(f"--plugin {spec}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(module_spec)

    def run() -> None:
        # The bytes that were hashed are the bytes that run.
        code = compile(source, key, "exec")
        sys.modules[module_name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise

    plugin = _imported(spec, origin, run)
    _loaded[key] = plugin
    log.info("plugin %s: %s", path, ", ".join(plugin.models))
    return plugin


@functools.lru_cache(maxsize=64)
def _distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed package (and its version) that provides ``module``'s top-level package."""
    import importlib.metadata as metadata

    names = metadata.packages_distributions().get(module.split(".")[0], [])
    if not names:
        return None, None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], None


def _load_module(spec: str, origin: ModelOrigin | None = None) -> Plugin:
    earlier = _loaded.get(spec)
    if earlier is not None:
        return earlier
    if origin is None:
        distribution, version = _distribution_of(spec)
        origin = ModelOrigin("module", module=spec, distribution=distribution, version=version)
    if spec in sys.modules:  # imported before (by the user's own code): its models are there
        models = tuple(name for name, entry in model_registry.entries(discover=False).items()
                       if (origin_of(entry).module or "").startswith(spec))
        if not models:
            raise VaelabError(f"--plugin {spec}: the module was imported before vaelab loaded "
                              "it and registered no models")
        plugin = Plugin(spec, origin, models)
    else:
        def run() -> None:
            try:
                importlib.import_module(spec)
            except ModuleNotFoundError as exc:
                if exc.name and (spec == exc.name or spec.startswith(exc.name + ".")):
                    raise VaelabError(f"no module named {exc.name!r} on the Python path; "
                                      "install its package, or give the path of a .py "
                                      "file") from None
                raise

        plugin = _imported(spec, origin, run)
    _loaded[spec] = plugin
    return plugin


def _autoload_off() -> bool:
    return os.environ.get(AUTOLOAD_OFF, "") not in ("", "0")


def load_installed() -> list[Plugin]:
    """Import every module declared in the entry-point group ``vaelab.models``."""
    if _autoload_off():
        return []
    import importlib.metadata as metadata

    plugins = []
    for point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        dist = point.dist
        name = dist.name if dist is not None else None
        version = dist.version if dist is not None else None
        declared = f"{point.name} = {point.value}"
        origin = ModelOrigin("module", module=point.module, distribution=name, version=version,
                             entry_point=declared)
        package = f"{name} {version}" if name else "an installed package"
        try:
            plugins.append(_load_module(point.module, origin))
        except VaelabError as exc:
            detail = str(exc).removeprefix(f"--plugin {point.module}: ")
            raise VaelabError(
                f"the installed plugin {declared} ({package}, entry-point group "
                f"{ENTRY_POINT_GROUP}) failed: {detail}; fix or uninstall it, or set "
                f"{AUTOLOAD_OFF}=1") from None
    return plugins


def origin_of(entry: ModelEntry) -> ModelOrigin:
    """Where a registered model's code came from (told by its builder when not recorded)."""
    if entry.origin is not None:
        return entry.origin
    module = getattr(entry.build, "__module__", None) or "__main__"
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if module == "__main__" or file is None:
        return ModelOrigin("session", module=module, path=file)
    distribution, version = _distribution_of(module)
    return ModelOrigin("module", module=module, path=file, distribution=distribution,
                       version=version)


def require_model(name: str, recorded: Mapping[str, Any] | None, where: str) -> None:
    """A run at ``where`` needs model ``name``: raise when no plugin registered it (naming
    the one that does), warn once when its code changed since the run was trained.

    ``recorded`` is the run's own word on where the model came from; it is only read, never
    acted upon: nothing it names is imported.
    """
    then = ModelOrigin.from_record(recorded)
    if name not in model_registry:
        known = ", ".join(model_registry.names())
        if then is None or then.kind == "vaelab":
            raise MissingPluginError(
                f"{where}: unknown model {name!r} (known: {known}); it was written by another "
                "vaelab version or another tool, or its model comes from a plugin: pass "
                "--plugin FILE.py or MODULE")
        raise MissingPluginError(f"{where}: its model {name!r} comes from {then.describe()}, "
                                 f"which is not loaded; {then.how_to_load()}")
    if then is None:
        return
    now = origin_of(model_registry.get(name))
    change = now.change_from(then)
    if change is not None and (name, change) not in _warned:
        _warned.add((name, change))
        warn("model %r: %s (seen first in %s); its weights are loaded into today's code",
             name, change, where)
