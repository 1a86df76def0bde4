"""`vaelab explore`: write a run's interactive latent-space explorer as one HTML file."""

from __future__ import annotations

import argparse
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "explore", help="write explorer.html: sliders, a latent map and the decoder, in one page",
        description="Write one self-contained HTML page (no server, no network) that decodes "
        "latent vectors live: a slider per latent dimension, a map of the test set's latent "
        "means, interpolation between test images and, for z_dim 1 and 2, the decoded manifold. "
        "A decoder the page cannot run (a layer it has no code for) is replaced by decodings "
        "precomputed on a grid over the map, and the page says so.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--out", default=None, help="HTML path (default RUN_DIR/explorer.html)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--weights", choices=("float16", "float32", "int8"), default="float16",
                        help="how the decoder's weights are stored: float16 (default; pixels "
                        "within about 1e-3 of PyTorch), float32 (exact, twice the size) or int8 "
                        "(half the size, coarser)")
    parser.add_argument("--points", type=int, default=2000,
                        help="test images drawn on the map (default 2000)")
    parser.add_argument("--data-dir", default=None,
                        help="where the dataset lives (default: as trained)")
    parser.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                        help="map the test images of this dataset instead of the one the run "
                        "was trained on (also: where that data lies now, if it moved)")
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from vaelab.explore import write_explorer

    result = write_explorer(args.run_dir, args.out, checkpoint=args.checkpoint,
                            encoding=args.weights, n_points=args.points, data_dir=args.data_dir,
                            dataset=args.dataset)
    if result.data_warning:
        print(f"vaelab: warning: {result.data_warning}", file=sys.stderr)
    size = f"{result.size_bytes / 1e6:.2f} MB"
    if result.grid_steps is not None:
        columns, rows = result.grid_steps
        cells = f"{columns} × {rows}" if rows > 1 else str(columns)
        print(f"{result.path}  ({size}: {cells} decodings precomputed on the map, "
              f"{result.n_points} map points; largest pixel difference from PyTorch at the "
              f"grid points {result.max_abs_error:.1e})")
        return 0
    print(f"{result.path}  ({size}: {result.n_weights:,} decoder weights as "
          f"{result.encoding}, {result.n_points} map points; largest pixel difference from "
          f"PyTorch {result.max_abs_error:.1e})")
    return 0
