"""The --tracker flag that `vaelab train`, `vaelab study` and `vaelab evaluate` share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_tracker_arguments"]


_HELP = ("also log to an experiment tracker: tensorboard or mlflow (repeatable; each needs its "
         "extra, e.g. pip install 'vaelab[tensorboard]')")


def add_tracker_arguments(parser: Any, help: str = _HELP) -> None:
    """``--tracker NAME``, repeatable, collected into the ``trackers`` setting."""
    parser.add_argument("--tracker", dest="trackers", action="append", metavar="NAME",
                        default=argparse.SUPPRESS, help=help)


def check_trackers(names: Any) -> None:
    """A one-line error, before any work, for an unknown tracker or a missing library."""
    if names:
        from vaelab.trackers import require_trackers

        require_trackers(names)
