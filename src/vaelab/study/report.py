"""The study report: one document built from results.json, rendered as HTML and as Markdown.

``build_document`` lays out the sections once; ``render_html`` embeds every figure as base64
(one self-contained file) at its own pixel size, and ``render_markdown`` links the same figures
by relative path, so both files say the same thing. Each section is laid out by
``vaelab.study.report_sections``; every sentence about the results comes from a rule of
``vaelab.study.conclusions`` and appears in the section its rule names.
"""

from __future__ import annotations

import base64
import html
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.study.conclusions import findings

__all__ = ["SECTIONS", "Document", "build_document", "png_size", "render_html",
           "render_markdown"]

SECTIONS = ("Method", "Training", "z_dim sweep", "Prior samples", "1-D latent space",
            "2-D latent space", "Elbow", "Conclusions")


@dataclass
class Document:
    """Blocks in reading order: (kind, payload) with kind in h1, h2, p, table, figure, list."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))

    def figures(self) -> list[str]:
        return [payload[0] for kind, payload in self.blocks if kind == "figure"]


def build_document(results: dict[str, Any]) -> Document:
    """The report's content; every number comes from ``results``."""
    from vaelab.study.report_sections import SECTION_BUILDERS, Context

    ctx = Context(results, findings(results))
    train, seeds = results["config"]["train"], results["seeds"]
    doc = Document()
    doc.add("h1", f"VAE latent-space study: {train['model']} network on {train['dataset']}")
    seed_text = (f"seeds {', '.join(map(str, seeds))}" if ctx.several else f"seed {seeds[0]}")
    doc.add("p", f"z_dims {', '.join(map(str, ctx.z_dims))}; {train['epochs']} epoch(s) each, "
            f"batch {train['batch_size']}, Adam lr {train['lr']:g}, {seed_text}. Every number "
            "and figure below was measured from this study directory's checkpoints, except the "
            "training table and the loss curves, which come from each run's metrics.jsonl"
            + (" (numbers: mean ± standard deviation across seeds)." if ctx.several else "."))
    for section in SECTIONS:
        doc.add("h2", section)
        SECTION_BUILDERS[section](doc, ctx)
    return doc


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
figure{margin:1.2em 0;overflow-x:auto}img{max-width:none;display:block}
figcaption{font-size:.9em;color:#555}"""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of PNG bytes, from the IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def render_html(doc: Document, figures_dir: Path) -> str:
    """A self-contained page: every figure inlined as a base64 PNG, shown at its pixel size."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(doc.blocks[0][1])}</title>",
             '<link rel="icon" href="data:,">', f"<style>{_CSS}</style></head><body>"]
    for kind, payload in doc.blocks:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{html.escape(payload)}</{kind}>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in payload)
                         + "</ul>")
        elif kind == "table":
            headers, rows = payload
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                           + "</tr>" for row in rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            name, caption = payload
            raw = (figures_dir / name).read_bytes()
            width, height = png_size(raw)
            data = base64.b64encode(raw).decode("ascii")
            parts.append(f'<figure id="{html.escape(name)}"><img alt="{html.escape(caption)}" '
                         f'width="{width}" height="{height}" '
                         f'src="data:image/png;base64,{data}"><figcaption>'
                         f"{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def render_markdown(doc: Document, figures_prefix: str = "figures") -> str:
    """The same document for GitHub: figures linked relative to the report."""
    lines: list[str] = []
    for kind, payload in doc.blocks:
        if kind == "h1":
            lines += [f"# {payload}", ""]
        elif kind == "h2":
            lines += [f"## {payload}", ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "list":
            lines += [f"- {x}" for x in payload] + [""]
        elif kind == "table":
            headers, rows = payload
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "|".join("---:" for _ in headers) + "|")
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
            lines.append("")
        elif kind == "figure":
            name, caption = payload
            lines += [f"![{caption}]({figures_prefix}/{name})", "", f"*{caption}*", ""]
    return "\n".join(lines)
