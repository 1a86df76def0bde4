"""`vaelab train`: fit a model and write its run directory."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from vaelab.cli.plugins import add_plugin_arguments
from vaelab.cli.trackers import add_tracker_arguments, check_trackers
from vaelab.config import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from vaelab.training.signals import StopOnSignal

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("train", help="train a VAE and write checkpoints, metrics and pictures",
                            description="Train a VAE. Precedence: defaults < --preset < --config "
                            "< flags. The run directory gets config.json, metrics.jsonl, "
                            "last/best checkpoints, loss_curves.png, reconstructions.png, "
                            "samples.png. Ctrl-C or SIGTERM stops after the current step and "
                            "saves a checkpoint that --resume continues exactly.")
    add_config_arguments(parser)
    add_tracker_arguments(parser)
    add_plugin_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its last checkpoint "
                        "(flags such as --epochs may extend it)")
    parser.set_defaults(handler=run)


def _resume_config(args: argparse.Namespace) -> Any:
    from vaelab.config import TrainConfig
    from vaelab.errors import VaelabError
    from vaelab.models.plugins import require_model
    from vaelab.runs.checkpoint import read_checkpoint
    from vaelab.runs.layout import RunDir
    from vaelab.settings import given_settings

    if getattr(args, "budget_epochs", None) is not None:
        raise VaelabError("--budget-epochs sets the length of a new run; a resumed run keeps "
                          "its own (train a new one with --recipe NAME --budget-epochs N)")
    ckpt = read_checkpoint(RunDir(args.resume).last)
    require_model(ckpt.model_config.name, ckpt.model_origin, str(ckpt.path))
    overrides = given_settings(args, TrainConfig)
    if overrides.get("recipe", ckpt.config.recipe) != ckpt.config.recipe:
        raise VaelabError(f"--recipe starts a new run; {args.resume} follows "
                          f"{ckpt.config.recipe or 'no recipe'} and is resumed as it is")
    merged = {**ckpt.config.to_dict(), **overrides, "out": args.resume}
    return TrainConfig.from_dict(merged, source="--resume")


def _check_names(config: Any) -> None:
    """--model names a registry entry and --dataset a registered dataset or an existing path;
    say which ones exist."""
    from vaelab.data.datasets import dataset_registry, is_registered
    from vaelab.data.user import dataset_path
    from vaelab.errors import VaelabError
    from vaelab.models import model_registry

    if config.model not in model_registry:
        raise VaelabError(f"--model: unknown {model_registry.kind} {config.model!r}; choose one "
                          f"of {', '.join(model_registry.names())}{model_registry.hint}")
    if not is_registered(config.dataset):
        try:
            dataset_path(config.dataset, dataset_registry.names())
        except VaelabError as exc:
            raise VaelabError(f"--dataset: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from vaelab.training.signals import StopOnSignal

    # Installed first, so Ctrl-C or SIGTERM even during start-up ends in a clean stop.
    with StopOnSignal() as stop:
        return _train(args, stop)


def _train(args: argparse.Namespace, stop: StopOnSignal) -> int:

    from vaelab.cli.output import BarProgress, format_table
    from vaelab.recipes import recipe_run
    from vaelab.runs.layout import RunDir
    from vaelab.training import RunOptions, TrainingInterrupted, fit

    config = _resume_config(args) if args.resume else config_from_args(args)
    _check_names(config)
    check_trackers(config.trackers)
    followed = recipe_run(config)
    recipe = f"recipe {followed.label()}: " if followed else ""
    banner = (f"{recipe}training {config.model} (z_dim={config.z_dim}) on {config.dataset} for "
              f"{config.epochs} epochs -> {config.out}")
    resume_hint = f"vaelab train --resume {config.out}"
    # Under torchrun only rank 0 reports; the other ranks train silently.
    speaks = os.environ.get("RANK", "0") == "0"
    try:
        options = RunOptions(resume=bool(args.resume),
                             progress=BarProgress(banner) if speaks else None,
                             stop_requested=stop)
        result = fit(config, options)
    except TrainingInterrupted as exc:
        print(f"\nvaelab: {stop.name or 'interrupted'}: {exc}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C: stopped mid-step, nothing saved for it
        saved = RunDir(config.out).last.is_file()
        print("\nvaelab: aborted; " + (f"the last complete checkpoint is intact; to continue: "
              f"{resume_hint}" if saved else "no checkpoint had been written"), file=sys.stderr)
        return stop.exit_code
    if not speaks:
        return 0
    rows = [[r["epoch"], r["train_loss"], r.get("val_loss", float("nan")),
             r.get("val_recon", r["train_recon"]), r.get("val_kl", r["train_kl"]), r["seconds"]]
            for r in result.history]
    print(format_table(rows, ["epoch", "train loss", "val loss", "val recon", "val KL", "seconds"]))
    which = "validation" if result.history and "val_loss" in result.history[0] else "training"
    print(f"\nrun directory: {result.run_dir}  (best {which} loss {result.best_val:.2f} nats)")
    if followed is not None:
        print(f"recipe: {followed.label()}; its number: `vaelab evaluate {result.run_dir} "
              f"--nll` ({followed.recipe.evaluation()})")
    return 0
