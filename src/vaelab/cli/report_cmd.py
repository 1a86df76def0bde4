"""`vaelab report STUDY_DIR`: measure a study's checkpoints and rewrite its report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "report", help="rewrite a study's report.html and report.md from its checkpoints",
        description="Measure every model of STUDY_DIR from its saved checkpoints and write "
        "report.html (self-contained), report.md, results.json and figures/. Trains nothing.")
    parser.add_argument("study_dir", metavar="STUDY_DIR")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"),
                        help="device for the measurements (default cpu)")
    parser.add_argument("--figures-to", metavar="DIR", default=None,
                        help="also copy the report's figures into DIR as compact PNGs of the "
                        "same pixel size (for a README)")
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vaelab.study.run import build_report

    paths = build_report(args.study_dir, device=args.device,
                         notify=lambda message: print(message, file=sys.stderr))
    print(paths.html)
    print(paths.markdown)
    if args.figures_to:
        from vaelab.pictures.compact import export_figures

        sizes = export_figures(paths.figures[0].parent, args.figures_to,
                               [p.name for p in paths.figures])
        print(f"{len(sizes)} figures ({sum(sizes.values()) / 1024:.0f} KB), each at the pixel "
              f"size the report shows -> {args.figures_to}", file=sys.stderr)
    return 0
