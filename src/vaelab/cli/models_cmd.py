"""`vaelab models`: list the registered architectures and where each one comes from."""

from __future__ import annotations

import argparse
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="list the model architectures (--plugin adds yours)",
                            description="List every registered model: vaelab's own, those of "
                            "installed plugins (entry-point group vaelab.models) and those of "
                            "each --plugin, with where its code comes from.")
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


def _source(origin: Any) -> str:
    from vaelab.models.user_code import short_path

    if origin.kind == "vaelab":
        return "vaelab"
    if origin.kind == "file":
        return f"{short_path(origin.path)} (plugin file)"
    if origin.kind == "module":
        package = f", {origin.distribution} {origin.version}" if origin.distribution else ""
        how = "installed plugin" if origin.entry_point else "plugin module"
        return f"{origin.module} ({how}{package})"
    return str(origin.describe())


def run(args: argparse.Namespace) -> int:
    from vaelab.cli.output import format_table
    from vaelab.models import model_registry
    from vaelab.models.plugins import origin_of

    rows = [[name, _source(origin_of(entry)), entry.summary]
            for name, entry in sorted(model_registry.entries().items())]
    print(format_table(rows, ["model", "from", "architecture"]))
    return 0
