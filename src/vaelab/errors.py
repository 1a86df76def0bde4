"""The one exception type a user sees: the CLI prints its message on one line and exits 2."""

from __future__ import annotations

__all__ = ["VaelabError"]


class VaelabError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""
