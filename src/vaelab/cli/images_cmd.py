"""`vaelab reconstruct` and `vaelab sample`: picture grids from a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError

__all__ = ["register"]


def register(sub: Any) -> None:
    rec = sub.add_parser("reconstruct", help="write originals above their reconstructions as a PNG grid")
    rec.add_argument("run_dir", metavar="RUN_DIR")
    rec.add_argument("--split", choices=("val", "test", "train"), default="val")
    rec.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    rec.add_argument("--out", default=None, help="PNG path (default RUN_DIR/reconstructions.png)")
    rec.add_argument("--data-dir", default=None)
    rec.set_defaults(handler=reconstruct)
    sam = sub.add_parser("sample", help="decode draws from the prior into a PNG grid")
    sam.add_argument("run_dir", metavar="RUN_DIR")
    sam.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sam.add_argument("--seed", type=int, default=0)
    sam.add_argument("--out", default=None, help="PNG path (default RUN_DIR/samples.png)")
    sam.set_defaults(handler=sample)


def _positive_n(n: int) -> None:
    if not 1 <= n <= 10_000:
        raise VaelabError(f"--n must be between 1 and 10000, got {n}")


def reconstruct(args: argparse.Namespace) -> int:
    import torch

    from vaelab.checkpoint import load_run
    from vaelab.data import load_splits
    from vaelab.figures import save_reconstructions

    _positive_n(args.n)
    loaded = load_run(args.run_dir)
    config = loaded.config
    images, labels = load_splits(config.dataset, args.data_dir or config.data_dir,
                                 config.val_size).split(args.split)
    out = Path(args.out) if args.out else loaded.run_dir / "reconstructions.png"
    save_reconstructions(out, loaded.model, torch.from_numpy(images[:args.n]), config.binarize,
                         torch.from_numpy(labels[:args.n]).long())
    print(out)
    return 0


def sample(args: argparse.Namespace) -> int:
    from vaelab.checkpoint import load_run
    from vaelab.figures import save_samples

    _positive_n(args.n)
    loaded = load_run(args.run_dir)
    out = Path(args.out) if args.out else loaded.run_dir / "samples.png"
    save_samples(out, loaded.model, n=args.n, seed=args.seed)
    print(out)
    return 0
