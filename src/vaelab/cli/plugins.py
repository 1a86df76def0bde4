"""The --plugin flag of every command that builds or loads a model.

``--plugin my_vae.py`` or ``--plugin my_package.vae`` (repeatable) imports a plugin before the
command runs (``vaelab.models.load_plugin``); the main entry point calls ``load_plugins`` for
every command whose parser has the flag. Installed plugins (entry-point group
``vaelab.models``) need no flag. Parsing the flag imports nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["PLUGIN_FLAG", "add_plugin_arguments", "load_plugins"]

PLUGIN_FLAG = "--plugin"

_HELP = ("import models of your own from a Python file (my_vae.py) or module (my_package.vae) "
         "that registers them with @vaelab.models.register_model (repeatable; installed "
         "packages declaring the entry-point group vaelab.models need no flag; see "
         "docs/your-own.md)")


def add_plugin_arguments(parser: Any) -> None:
    """``--plugin FILE.py|MODULE``, repeatable, collected into ``args.plugins``."""
    parser.add_argument(PLUGIN_FLAG, dest="plugins", action="append", default=[],
                        metavar="FILE.py|MODULE", help=_HELP)


def load_plugins(args: argparse.Namespace) -> None:
    """Import every plugin the command line names, in order (one-line errors)."""
    specs = getattr(args, "plugins", None) or []
    if not specs:
        return
    from vaelab.models import load_plugin

    for spec in specs:
        load_plugin(spec)
