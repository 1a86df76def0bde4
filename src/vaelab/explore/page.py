"""Fill the explorer template: inline the script and style, embed the data, set the CSP.

The page is one file. Its Content-Security-Policy (a meta tag) allows only the inline script
and style whose SHA-256 hashes it names, and nothing else: no fetches, images, fonts or frames.
The data travel in a ``<script type="application/json">`` block, which browsers never execute.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from typing import Any

__all__ = ["TEMPLATE_FILES", "content_security_policy", "render_page"]

TEMPLATE_FILES = ("explorer.html", "explorer.css", "explorer.js")


def _web_file(name: str) -> str:
    return (resources.files("vaelab") / "web" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def content_security_policy(script: str, style: str) -> str:
    """A policy that allows exactly this inline script and style, and nothing else."""
    return "; ".join([
        "default-src 'none'",
        f"script-src '{_sha256(script)}'",
        f"style-src '{_sha256(style)}'",
        "base-uri 'none'",
        "form-action 'none'",
    ])


def _json_for_script(payload: dict[str, Any]) -> str:
    # "</script" would end the element and "<!--" changes how it is parsed; "\u003c" is the
    # same character to JSON and cannot do either.
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(payload: dict[str, Any], title: str) -> str:
    """The complete HTML document for ``payload`` (the explorer data)."""
    page, style, script = (_web_file(name) for name in TEMPLATE_FILES)
    # The browser hashes the element's text exactly as written, so the hashed text is what we
    # insert, untouched.
    script_text, style_text = "\n" + script + "\n", "\n" + style + "\n"
    fields = {
        "{{CSP}}": html.escape(content_security_policy(script_text, style_text), quote=True),
        "{{TITLE}}": html.escape(title),
        "{{STYLE}}": style_text,
        "{{SCRIPT}}": script_text,
        "{{DATA}}": _json_for_script(payload),
    }
    if "</script" in script.lower() or "</style" in style.lower():
        raise RuntimeError("explorer script or style would close its element early")
    for marker in fields:
        if page.count(marker) != 1:
            raise RuntimeError(f"explorer template must hold {marker} exactly once")
    # One pass: text inserted for one marker is never searched for another.
    return re.sub(r"\{\{[A-Z]+\}\}", lambda match: fields[match.group(0)], page)
