"""Notices: what the library tells a user without ``--verbose``, such as which path a run takes.

The library never prints. A notice is an INFO record on the one logger ``vaelab.notice`` (a
warning a WARNING record); the CLI shows those records (as ``vaelab: MESSAGE`` and ``vaelab:
warning: MESSAGE`` on stderr), and a Python caller sees them by configuring logging.
"""

from __future__ import annotations

import logging

__all__ = ["NOTICE_LOGGER", "notice", "warn"]

NOTICE_LOGGER = "vaelab.notice"


def notice(message: str, *args: object) -> None:
    """Tell the user something worth a line even when all is well (%-style ``args``)."""
    logging.getLogger(NOTICE_LOGGER).info(message, *args)


def warn(message: str, *args: object) -> None:
    """Tell the user something that may be wrong, without stopping (%-style ``args``)."""
    logging.getLogger(NOTICE_LOGGER).warning(message, *args)
