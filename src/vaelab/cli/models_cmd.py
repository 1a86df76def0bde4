"""`vaelab models`: list the registered architectures."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="list the model architectures")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vaelab.cli.output import format_table
    from vaelab.models import model_registry

    rows = [[name, model_registry.get(name).summary] for name in model_registry.names()]
    print(format_table(rows, ["model", "architecture"]))
    return 0
