"""`vaelab study`: the z_dim sweep of the latent-space study, its measurements and its report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def _z_dims(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--z-dims expects comma-separated integers such as 1,2,5, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("--z-dims needs at least one value")
    return values


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "study", help="train the z_dim sweep and write the latent-space study report",
        description="Train one run directory per z_dim (STUDY_DIR/z1, z2, ...), measure every "
        "model and write STUDY_DIR/report.html and report.md. Defaults are the original study "
        "(seed network, z_dims 1,2,5,10,20, Adam 1e-3, batch 32, 100 epochs, mnist). Running "
        "it again resumes: finished z_dims are not retrained. Precedence: defaults < the "
        "study.json of an existing STUDY_DIR < --quick < flags.")
    given = argparse.SUPPRESS
    parser.add_argument("--out", default="runs/study", metavar="STUDY_DIR",
                        help="study directory (default runs/study)")
    parser.add_argument("--quick", action="store_true",
                        help="a few-minute version: mnist-sample, 10 epochs, all five z_dims")
    parser.add_argument("--z-dims", type=_z_dims, default=given, metavar="1,2,5,10,20",
                        help="latent sizes of the sweep")
    parser.add_argument("--epochs", type=int, default=given, help="epochs per z_dim (100)")
    parser.add_argument("--model", default=given, help="architecture (seed)")
    parser.add_argument("--dataset", default=given, help="dataset name (mnist)")
    parser.add_argument("--data-dir", default=given,
                        help="data root (default $VAELAB_DATA or ~/.cache/vaelab)")
    parser.add_argument("--batch-size", type=int, default=given, help="batch size (32)")
    parser.add_argument("--lr", type=float, default=given, help="Adam learning rate (1e-3)")
    parser.add_argument("--seed", type=int, default=given, help="seed of every run (1)")
    parser.add_argument("--device", default=given, choices=("auto", "cpu", "cuda", "mps"),
                        help="training device (auto)")
    parser.add_argument("--classifier-dir", default=given,
                        help="classifier cache (default <data root>/classifiers)")
    parser.set_defaults(handler=run)


_FLAGS = ("z_dims", "epochs", "model", "dataset", "data_dir", "batch_size", "lr", "seed",
          "device", "classifier_dir")


def resolve_study_config(args: argparse.Namespace) -> Any:
    """defaults < STUDY_DIR/study.json < --quick < flags."""
    from pathlib import Path

    from vaelab.study.config import QUICK, STUDY_FILE, StudyConfig, load_study_config

    config = StudyConfig(out=args.out)
    if (Path(args.out) / STUDY_FILE).is_file():
        config = load_study_config(args.out)
    if args.quick:
        config = config.with_overrides(**QUICK)
    return config.with_overrides(**{k: getattr(args, k) for k in _FLAGS if hasattr(args, k)})


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
    from vaelab.training.loop import TrainingInterrupted

    config = resolve_study_config(args)
    print(f"study: {config.model} on {config.dataset}, z_dims "
          f"{', '.join(map(str, config.z_dims))}, {config.epochs} epochs each -> {config.out}",
          file=sys.stderr)
    again = f"run `vaelab study --out {config.out}` again to resume"
    started = time.perf_counter()
    try:
        paths = run_study(config, _progress(), stop,
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
