"""The --tracker flag that `vaelab train`, `vaelab study` and `vaelab evaluate` share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_tracker_arguments"]


def add_tracker_arguments(parser: Any) -> None:
    """``--tracker NAME``, repeatable, collected into the ``trackers`` setting."""
    parser.add_argument(
        "--tracker", dest="trackers", action="append", metavar="NAME",
        default=argparse.SUPPRESS,
        help="also log to an experiment tracker: tensorboard or mlflow (repeatable; each needs "
        "its extra, e.g. pip install 'vaelab[tensorboard]')")
