"""A user's code named in one line: where a function was defined, where an exception was raised.

Messages about a plugin point at the plugin's own lines (``my_vae.py:12``), not at the torch or
vaelab frames around them. Nothing here imports torch.
"""

from __future__ import annotations

import inspect
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any

__all__ = ["defined_at", "describe_exception", "short_path"]

_MAX_MESSAGE = 300  # characters of an exception's own message kept in a one-line error


def short_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies inside it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def defined_at(obj: Any) -> str:
    """``file:line`` where a function or class was defined ("?" when it cannot be told)."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return f"{short_path(code.co_filename)}:{code.co_firstlineno}"
    try:
        lines = inspect.getsourcelines(obj)[1]
        file = inspect.getsourcefile(obj)
    except (OSError, TypeError):
        return "?"
    return f"{short_path(file)}:{lines}" if file else "?"


def _not_user_code() -> tuple[str, ...]:
    """Folders whose frames are never the user's: the standard library, torch, vaelab."""
    folders = {sysconfig.get_paths()["stdlib"], str(Path(__file__).resolve().parents[1])}
    torch_file = getattr(sys.modules.get("torch"), "__file__", None)
    if torch_file:
        folders.add(str(Path(torch_file).resolve().parent))
    return tuple(folders)


def _where(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``exc`` that is the user's own code."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{short_path(exc.filename)}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    skipped = _not_user_code()
    own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(skipped)
           and not f.filename.startswith("<")]
    frame = (own or frames)[-1]
    return f"{short_path(frame.filename)}:{frame.lineno}"


def describe_exception(exc: BaseException) -> str:
    """``NameError: name 'nn' is not defined (my_vae.py:3)``, on one line."""
    message = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    message = " ".join(message.split())
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    where = _where(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{text} ({where})" if where else text
