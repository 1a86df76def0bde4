"""`vaelab evaluate`: per-image loss terms of a trained model on a data split."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("evaluate", help="per-image negative ELBO, BCE, MSE and KL of a run")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--split", choices=("test", "val", "train"), default="test")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--data-dir", default=None, help="where the dataset lives (default: as trained)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from vaelab.checkpoint import load_run
    from vaelab.cli.output import format_table, print_json
    from vaelab.data import load_splits
    from vaelab.device import resolve_device
    from vaelab.train import evaluate

    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, which=args.checkpoint, device=device)
    config = loaded.config
    splits = load_splits(config.dataset, args.data_dir or config.data_dir, config.val_size)
    images, labels = splits.split(args.split)
    result = evaluate(loaded.model, torch.from_numpy(images).to(device),
                      torch.from_numpy(labels).long().to(device), config.binarize)
    report = {"split": args.split, **result, "model": config.model, "z_dim": config.z_dim,
              "dataset": config.dataset, "checkpoint": args.checkpoint}
    if args.json:
        print_json(report)
    else:
        print(f"{config.model} z_dim={config.z_dim} on {config.dataset} {args.split} "
              f"({result['n']} images), per image:")
        print(format_table([["negative ELBO (nats)", result["neg_elbo"]],
                            ["reconstruction BCE (nats)", result["recon_bce"]],
                            ["KL (nats)", result["kl"]],
                            ["pixel MSE (per pixel)", result["mse"]]], ["measure", "value"]))
    return 0
