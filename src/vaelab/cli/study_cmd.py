"""`vaelab study`: the z_dim sweep of the latent-space study, its measurements and its report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments
from vaelab.cli.trackers import add_tracker_arguments, check_trackers

__all__ = ["register"]


def register(sub: Any) -> None:
    from vaelab.config import TrainConfig
    from vaelab.settings import add_setting_arguments
    from vaelab.study.config import STUDY_TRAIN, StudyConfig

    parser = sub.add_parser(
        "study", help="train the z_dim sweep and write the latent-space study report",
        description="Train one run directory per z_dim (STUDY_DIR/z1, z2, ...), measure every "
        "model and write STUDY_DIR/report.html and report.md. Defaults are the original study "
        "(seed network, z_dims 1,2,5,10,20, Adam 1e-3, batch 32, 100 epochs, mnist). Running "
        "it again resumes: finished z_dims are not retrained. Every training flag of `vaelab "
        "train` applies to all runs. Precedence: defaults < the study.json of an existing "
        "STUDY_DIR < --quick < flags.")
    parser.add_argument("--quick", action="store_true",
                        help="a few-minute version: mnist-sample, 10 epochs, all five z_dims")
    add_setting_arguments(parser, StudyConfig)
    shown = {k: v for k, v in STUDY_TRAIN.to_dict().items() if v is not None}
    add_setting_arguments(parser, TrainConfig, exclude=("out", "z_dim", "recipe"), defaults=shown)
    add_tracker_arguments(parser)
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


def resolve_study_config(args: argparse.Namespace) -> Any:
    """defaults < STUDY_DIR/study.json < --quick < flags."""
    from pathlib import Path

    from vaelab.config import TrainConfig
    from vaelab.settings import given_settings
    from vaelab.study.config import QUICK, STUDY_FILE, StudyConfig, load_study_config

    out = getattr(args, "out", StudyConfig().out)
    config = StudyConfig(out=out)
    if (Path(out) / STUDY_FILE).is_file():
        config = load_study_config(out)
    if args.quick:
        config = config.with_overrides(train=QUICK)
    study_flags = given_settings(args, StudyConfig)
    train_flags = given_settings(args, TrainConfig)
    return config.with_overrides(train=train_flags, **study_flags)


def _progress() -> Any:
    """Stage lines and one tqdm bar per epoch on stderr."""
    from vaelab.cli.output import BarProgress
    from vaelab.study.sweep import SweepProgress

    class Progress(BarProgress, SweepProgress):
        def run_skipped(self, config: Any) -> None:
            print(f"z_dim={config.z_dim}: finished earlier, not retrained ({config.out})",
                  file=sys.stderr)

        def run_start(self, config: Any, index: int, total: int, status: str) -> None:
            verb = "resuming" if status == "resumed" else "training"
            print(f"[{index + 1}/{total}] z_dim={config.z_dim}: {verb} {config.model} for "
                  f"{config.epochs} epochs -> {config.out}", file=sys.stderr)

        def run_end(self, config: Any, seconds: float) -> None:
            print(f"z_dim={config.z_dim}: done in {seconds:.0f} s", file=sys.stderr)

    return Progress()


def run(args: argparse.Namespace) -> int:
    from vaelab.training.signals import StopOnSignal

    # Ctrl-C or SIGTERM finishes the current step, saves the run, then stops the study.
    with StopOnSignal() as stop:
        return _study(args, stop)


def _study(args: argparse.Namespace, stop: Any) -> int:
    import time

    from vaelab.study.run import run_study
    from vaelab.training import RunOptions, TrainingInterrupted

    config = resolve_study_config(args)
    check_trackers(config.train.trackers)
    train = config.train
    seeds = f" x {config.seeds} seeds" if config.seeds > 1 else ""
    print(f"study: {train.model} on {train.dataset}, z_dims "
          f"{', '.join(map(str, config.z_dims))}{seeds}, {train.epochs} epochs each -> "
          f"{config.out}", file=sys.stderr)
    again = f"run `vaelab study --out {config.out}` again to resume"
    started = time.perf_counter()
    try:
        paths = run_study(config, RunOptions(progress=_progress(), stop_requested=stop),
                          notify=lambda message: print(message, file=sys.stderr))
    except TrainingInterrupted:
        print(f"\nvaelab: {stop.name or 'interrupted'}: study stopped with its checkpoints "
              f"saved; {again}", file=sys.stderr)
        return int(stop.exit_code)
    except KeyboardInterrupt:
        print(f"\nvaelab: aborted; finished runs and the last complete checkpoint are intact; "
              f"{again}", file=sys.stderr)
        return int(stop.exit_code)
    print(f"study finished in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(paths.html)
    print(paths.markdown)
    return 0
