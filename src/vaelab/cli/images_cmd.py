"""`vaelab reconstruct` and `vaelab sample`: picture grids from a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments
from vaelab.errors import VaelabError
from vaelab.runs.layout import DIGITS, RECONSTRUCTIONS, SAMPLES, RunDir, digit_samples
from vaelab.settings import SEED

__all__ = ["register"]


def register(sub: Any) -> None:
    rec = sub.add_parser("reconstruct",
                         help="write originals above their reconstructions as a PNG grid")
    rec.add_argument("run_dir", metavar="RUN_DIR")
    rec.add_argument("--split", choices=("val", "test", "train"), default="val")
    rec.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    rec.add_argument("--out", default=None, help="PNG path (default RUN_DIR/reconstructions.png)")
    rec.add_argument("--data-dir", default=None)
    rec.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                     help="reconstruct images of this dataset instead of the one the run was "
                     "trained on (also: where that data lies now, if it moved)")
    add_plugin_arguments(rec)
    rec.set_defaults(handler=reconstruct)
    sam = sub.add_parser("sample", help="decode draws from the prior into a PNG grid",
                         description="Decode prior draws into a PNG grid. For a conditional model "
                         "(cvae), --digit D draws that digit; without it, the picture is every "
                         "digit (columns) x --styles prior draws (rows), one z per row.")
    sam.add_argument("run_dir", metavar="RUN_DIR")
    sam.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sam.add_argument("--seed", type=SEED.parser("seed"), default=0)
    sam.add_argument("--digit", type=int, default=None, metavar="D",
                     help="conditional models: draw only this class")
    sam.add_argument("--styles", type=int, default=8, metavar="R",
                     help="conditional models without --digit: rows of the digit x style grid "
                     "(default 8)")
    sam.add_argument("--out", default=None, help="PNG path (default RUN_DIR/samples.png, "
                     "samples_digit<D>.png with --digit, digits.png for the digit x style grid)")
    add_plugin_arguments(sam)
    sam.set_defaults(handler=sample)


def _positive_n(n: int) -> None:
    if not 1 <= n <= 10_000:
        raise VaelabError(f"--n must be between 1 and 10000, got {n}")


def reconstruct(args: argparse.Namespace) -> int:
    import sys

    import torch

    from vaelab.pictures.run_figures import save_reconstructions
    from vaelab.runs.rebuild import load_run
    from vaelab.runs.run_data import run_data

    _positive_n(args.n)
    loaded = load_run(args.run_dir)
    config = loaded.config
    data = run_data(loaded.run_dir, config, args.dataset, args.data_dir)
    data.check_model(loaded.model)
    if data.change is not None:
        print(f"vaelab: warning: {data.change.warning()}", file=sys.stderr)
    images, labels = data.splits.split(args.split)
    out = Path(args.out) if args.out else RunDir(loaded.run_dir).picture(RECONSTRUCTIONS)
    save_reconstructions(out, loaded.model, torch.from_numpy(images[:args.n]), config.binarize,
                         None if labels is None else torch.from_numpy(labels[:args.n]).long())
    print(out)
    return 0


def sample(args: argparse.Namespace) -> int:
    from vaelab.pictures.run_figures import save_samples
    from vaelab.runs.rebuild import load_run

    _positive_n(args.n)
    loaded = load_run(args.run_dir)
    model = loaded.model
    if args.digit is not None and not model.conditional:
        raise VaelabError(f"--digit needs a conditional model (cvae); {args.run_dir} holds "
                          f"{model.config.name!r}")
    if model.conditional:
        return _sample_conditional(args, loaded.run_dir, model)
    out = Path(args.out) if args.out else RunDir(loaded.run_dir).picture(SAMPLES)
    save_samples(out, model, n=args.n, seed=args.seed)
    print(out)
    return 0


def _sample_conditional(args: argparse.Namespace, run_dir: Path, model: Any) -> int:
    import math

    import torch

    from vaelab.models.cvae import digit_style_grid
    from vaelab.pictures.png import save_grid
    from vaelab.pictures.run_figures import prior_samples

    classes = model.config.num_classes
    if args.digit is not None:
        if not 0 <= args.digit < classes:
            raise VaelabError(f"--digit must be between 0 and {classes - 1}, got {args.digit}")
        labels = torch.full((args.n,), args.digit, dtype=torch.long)
        images = prior_samples(model, args.n, seed=args.seed, labels=labels)
        out = Path(args.out) if args.out else RunDir(run_dir).picture(digit_samples(args.digit))
        save_grid(out, images, ncol=math.ceil(math.sqrt(args.n)))
    else:
        if not 1 <= args.styles <= 100:
            raise VaelabError(f"--styles must be between 1 and 100, got {args.styles}")
        grid = digit_style_grid(model, args.styles, seed=args.seed)
        out = Path(args.out) if args.out else RunDir(run_dir).picture(DIGITS)
        save_grid(out, grid.flatten(0, 1)[:, 0].float().cpu().numpy(), ncol=classes)
    print(out)
    return 0
