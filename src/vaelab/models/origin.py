"""Where a model's code came from: vaelab itself, a plugin file, or an importable module.

A ``ModelOrigin`` is recorded with every run (``provenance.json`` and the checkpoint header), so
a run directory can say which plugin it needs and whether that plugin's code changed since the
run was trained. A record read back from disk is a stranger's data: ``from_record`` keeps only
well-formed short strings, and nothing here (or anywhere) imports what a record names.
Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["KINDS", "ModelOrigin", "loading_origin", "registering_from", "sanitised"]

# "vaelab": a built-in architecture; "file": a plugin file (--plugin my_vae.py); "module": an
# importable module (--plugin my_package.vae, or an installed package's entry point);
# "session": registered outside any plugin (a script or notebook), so no later process has it.
KINDS = ("vaelab", "file", "module", "session")

_MAX_CHARS = 300  # a recorded string longer than this is cut, with "..."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sanitised(value: Any) -> str | None:
    """A recorded value as a short printable one-line string, or None when it is no string."""
    if not isinstance(value, str) or not value:
        return None
    text = _CONTROL.sub("?", value)
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS] + "..."


@dataclass(frozen=True)
class ModelOrigin:
    """The source of a model's code; which fields are set depends on ``kind``."""

    kind: str  # one of KINDS
    module: str | None = None  # the module that was imported (a plugin file's is made up)
    path: str | None = None  # the plugin file, absolute (kind "file"); the script ("session")
    sha256: str | None = None  # of the plugin file's bytes as they were imported (kind "file")
    distribution: str | None = None  # the installed package that holds the module, if any
    version: str | None = None  # its version (vaelab's own for kind "vaelab")
    entry_point: str | None = None  # "name = value" when found in the vaelab.models group

    def to_dict(self) -> dict[str, str]:
        """The fields that are set, for provenance.json and the checkpoint header."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_record(cls, record: Any) -> ModelOrigin | None:
        """An origin from a recorded dict, or None when the record is absent or malformed."""
        if not isinstance(record, Mapping) or record.get("kind") not in KINDS:
            return None
        values = {f.name: sanitised(record.get(f.name)) for f in fields(cls)}
        return cls(**values)  # type: ignore[arg-type]

    @property
    def plugin(self) -> str | None:
        """What ``--plugin`` takes to load this code again (None: vaelab's own, or no plugin)."""
        if self.kind == "file":
            return self.path
        if self.kind == "module":
            return self.module
        return None

    def describe(self) -> str:
        """A few words for messages: "the plugin file /x/my_vae.py", "vaelab 0.2.0"."""
        if self.kind == "vaelab":
            return f"vaelab {self.version}" if self.version else "vaelab"
        if self.kind == "file":
            return f"the plugin file {self.path}"
        if self.kind == "module":
            package = f" ({self.distribution} {self.version})" if self.distribution else ""
            return f"the module {self.module}{package}"
        where = f" in {self.path}" if self.path else ""
        return f"code registered outside any plugin{where}"

    def how_to_load(self) -> str:
        """The one step that makes this code available again, for the end of a message."""
        if self.kind == "file":
            return (f"pass --plugin {self.path} (in Python: "
                    f"vaelab.models.load_plugin({self.path!r}))")
        if self.kind == "module":
            install = f"install {self.distribution}, or " if self.distribution else ""
            return f"{install}pass --plugin {self.module}"
        if self.kind == "session":
            return ("move the model into a plugin file and pass --plugin FILE.py "
                    "(see docs/your-own.md)")
        return "it belongs to another vaelab version"

    def same_source(self, other: ModelOrigin) -> bool:
        """Whether both name the same file, module or vaelab (versions and hashes aside)."""
        if self.kind != other.kind:
            return False
        if self.kind == "file":
            return self.path == other.path
        return self.module == other.module or self.kind == "vaelab"

    def change_from(self, recorded: ModelOrigin) -> str | None:
        """How this (today's) code differs from the ``recorded`` one, in words; None if not."""
        if self.kind == "vaelab" and recorded.kind == "vaelab":
            return None  # vaelab's own models keep their weights' layout across versions
        if not self.same_source(recorded):
            return f"it was trained with {recorded.describe()}, now it comes from " \
                   f"{self.describe()}"
        if self.kind == "file" and recorded.sha256 and self.sha256 != recorded.sha256:
            return (f"{self.path} changed since it was trained (SHA-256 "
                    f"{recorded.sha256[:12]}... then, {(self.sha256 or '?')[:12]}... now)")
        if self.kind == "module" and recorded.version and self.version != recorded.version:
            return (f"{self.module} was {recorded.distribution or 'version'} "
                    f"{recorded.version} when it was trained, now {self.version}")
        return None


# The plugin being imported right now: what it registers is attributed to it.
_LOADING: ContextVar[ModelOrigin | None] = ContextVar("vaelab_plugin_loading", default=None)


@contextlib.contextmanager
def registering_from(origin: ModelOrigin) -> Iterator[None]:
    """Inside the block, every model registered comes from ``origin``."""
    token = _LOADING.set(origin)
    try:
        yield
    finally:
        _LOADING.reset(token)


def loading_origin() -> ModelOrigin | None:
    """The origin of the plugin being imported, or None outside ``registering_from``."""
    return _LOADING.get()
