"""Entry point of the ``vaelab`` command.

Every command module exposes ``register(subparsers)``, which adds its parser and sets
``handler``; heavy imports (torch, matplotlib) happen inside handlers, so ``vaelab --help``
stays fast. A VaelabError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from vaelab import __version__
from vaelab.cli.plugins import load_plugins
from vaelab.errors import VaelabError
from vaelab.notice import NOTICE_LOGGER
from vaelab.settings import SettingError

__all__ = ["COMMANDS", "build_parser", "console_main", "main"]

# Command modules, in the order `vaelab --help` lists them.
COMMANDS = (
    "vaelab.cli.train_cmd",
    "vaelab.cli.evaluate_cmd",
    "vaelab.cli.images_cmd",
    "vaelab.cli.data_cmd",
    "vaelab.cli.models_cmd",
    "vaelab.cli.recipes_cmd",
    "vaelab.cli.explore_cmd",
    "vaelab.cli.study_cmd",
    "vaelab.cli.report_cmd",
    "vaelab.cli.runs_cmd",
)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (plus the exit code 2 argparse already uses)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vaelab", description="Train, measure and explore variational "
                    "autoencoders on MNIST-style images.")
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


class _NoticeHandler(logging.Handler):
    """The library's notices (``vaelab.notice``) as ``vaelab: MESSAGE`` on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning: " if record.levelno >= logging.WARNING else ""
        print(f"vaelab: {kind}{record.getMessage()}", file=sys.stderr)


def _show_notices() -> None:
    notices = logging.getLogger(NOTICE_LOGGER)
    notices.setLevel(logging.INFO)
    notices.propagate = False  # shown once, with or without --verbose
    if not any(isinstance(h, _NoticeHandler) for h in notices.handlers):
        notices.addHandler(_NoticeHandler())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    _show_notices()
    try:
        load_plugins(args)  # before the command: its models are registered like vaelab's
        return int(args.handler(args) or 0)
    except SettingError as exc:  # a setting out of range: name it as the flag the user typed
        print(f"vaelab: error: {exc.flag_message()}", file=sys.stderr)
        return 2
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("vaelab: interrupted", file=sys.stderr)
        return 130


def console_main() -> NoReturn:
    sys.exit(main())
