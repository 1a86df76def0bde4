"""`vaelab train`: fit a model and write its run directory."""

from __future__ import annotations

import argparse
from typing import Any

from vaelab.config import add_config_arguments, config_from_args

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("train", help="train a VAE and write checkpoints, metrics and pictures",
                            description="Train a VAE. Precedence: defaults < --preset < --config "
                            "< flags. The run directory gets config.json, metrics.jsonl, "
                            "last/best checkpoints, loss_curves.png, reconstructions.png, samples.png.")
    add_config_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its last checkpoint "
                        "(flags such as --epochs may extend it)")
    parser.set_defaults(handler=run)


def _resume_config(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from vaelab.checkpoint import LAST, read_checkpoint
    from vaelab.config import TrainConfig

    ckpt = read_checkpoint(Path(args.resume) / LAST)
    names = set(TrainConfig.__dataclass_fields__)
    overrides = {k: v for k, v in vars(args).items() if k in names}
    merged = {**ckpt.config.to_dict(), **overrides, "out": args.resume}
    return TrainConfig.from_dict(merged, source="--resume")


def run(args: argparse.Namespace) -> int:
    from vaelab.cli.output import BarProgress, format_table
    from vaelab.train import fit

    config = _resume_config(args) if args.resume else config_from_args(args)
    banner = (f"training {config.model} (z_dim={config.z_dim}) on {config.dataset} for "
              f"{config.epochs} epochs -> {config.out}")
    result = fit(config, resume=bool(args.resume), progress=BarProgress(banner))
    rows = [[r["epoch"], r["train_loss"], r.get("val_loss", float("nan")),
             r.get("val_recon", r["train_recon"]), r.get("val_kl", r["train_kl"]), r["seconds"]]
            for r in result.history]
    print(format_table(rows, ["epoch", "train loss", "val loss", "val recon", "val KL", "seconds"]))
    which = "validation" if result.history and "val_loss" in result.history[0] else "training"
    print(f"\nrun directory: {result.run_dir}  (best {which} loss {result.best_val:.2f} nats)")
    return 0
