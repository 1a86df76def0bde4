"""`vaelab runs [DIR]`: a table of run directories; `vaelab runs compare RUN ... --out PNG`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaelab.cli.plugins import add_plugin_arguments
from vaelab.errors import VaelabError
from vaelab.runs.inventory import COLUMNS

__all__ = ["format_duration", "register"]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "runs", help="a table of the run directories under DIR (default runs/); "
        "`runs compare RUN RUN ... --out curves.png` overlays their loss curves",
        description="List every run directory under DIR: model, z_dim, dataset, epochs done / "
        "planned, best validation loss, the test negative ELBO and NLL where `vaelab evaluate` "
        "measured them, wall time, and whether the run is finished, interrupted (resumable), "
        "locked by a live training, started (no checkpoint yet) or corrupt. Reads only; writes "
        "nothing. `vaelab runs compare RUN RUN ... --out curves.png` draws their loss curves "
        "together.")
    parser.add_argument("targets", nargs="*", metavar="DIR",
                        help="folder to list (default runs/), or `compare RUN RUN ...`")
    parser.add_argument("--json", action="store_true",
                        help="print the rows as one JSON list of objects")
    parser.add_argument("--sort", choices=list(COLUMNS), default="run",
                        help="column to sort by, smallest first (default run); rows without a "
                        "value come last")
    parser.add_argument("--out", default=None, metavar="PNG",
                        help="with compare: where to write the curves (default curves.png)")
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.targets[:1] == ["compare"]:
        if args.json or args.sort != "run":
            raise VaelabError("--json and --sort go with the table, not with `compare`")
        return _compare(args.targets[1:], Path(args.out or "curves.png"))
    if len(args.targets) > 1:
        raise VaelabError("give one folder to list (or `vaelab runs compare RUN RUN ...`)")
    if args.out:
        raise VaelabError("--out goes with `vaelab runs compare RUN RUN ...`")
    return _list(Path(args.targets[0] if args.targets else "runs"), args.sort, args.json)


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s`` or ``2h07m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _sort_key(column: str) -> Any:
    def key(row: Any) -> tuple[bool, Any]:
        value = row.value(column)
        return (value is None, value if value is not None else 0)

    return key


def _list(root: Path, sort: str, as_json: bool) -> int:
    from vaelab.cli.output import format_table, print_json
    from vaelab.data.datasets import display_name
    from vaelab.runs.inventory import find_runs, summarise

    rows = sorted((summarise(path, root) for path in find_runs(root)), key=_sort_key(sort))
    if as_json:
        print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        print(f"no run directories under {root}")
        return 0

    def shown(value: Any) -> Any:
        return "-" if value is None else value

    # A dataset given as a path is shown by its last part; --json keeps the whole path.
    table = [[r.run, r.status, shown(r.model), shown(r.z_dim),
              "-" if r.dataset is None else display_name(r.dataset),
              f"{shown(r.epochs_done)}/{shown(r.epochs_planned)}", shown(r.best_val),
              shown(r.test_neg_elbo), shown(r.test_nll), shown(r.recipe),
              format_duration(r.seconds)]
             for r in rows]
    print(format_table(table, list(COLUMNS)))
    for r in rows:
        if r.problem:
            print(f"{r.run}: {r.problem}")
        if r.holder:
            print(f"{r.run}: in use by {r.holder}")
        missing = _missing_model(r)
        if missing:
            print(missing)
    return 0


def _missing_model(row: Any) -> str | None:
    """Which plugin a run's model needs, when none of those loaded registers it."""
    from vaelab.models.plugins import MissingPluginError, require_model

    if row.model is None:
        return None
    try:
        require_model(row.model, row.model_origin, row.run)
    except MissingPluginError as exc:
        return str(exc)
    return None


def _compare(targets: list[str], out: Path) -> int:
    from vaelab.pictures.plots import plot_loss_curves
    from vaelab.runs.layout import RunDir

    runs = list(dict.fromkeys(RunDir(target) for target in targets))  # a run named twice: once
    if len(runs) < 2:
        raise VaelabError("name two or more run directories to compare: `vaelab runs compare "
                          "RUN RUN ... --out curves.png`")
    histories = []
    for run in runs:
        if not run.path.is_dir():
            raise VaelabError(f"run directory {run} does not exist")
        history = run.read_metrics()
        if not history:
            raise VaelabError(f"{run} has no epoch records ({run.metrics.name}); train it first "
                              "or leave it out")
        histories.append(history)
    # Each run is labelled by its folder name, or by the path given when two names clash.
    names = [run.path.name for run in runs]
    labels = [name if names.count(name) == 1 else str(run) for name, run in zip(names, runs,
                                                                                strict=True)]
    if out.suffix.lower() != ".png":
        raise VaelabError(f"--out {out} must name a .png file")
    if not out.parent.is_dir():
        raise VaelabError(f"cannot write {out}: folder {out.parent} does not exist")
    plot_loss_curves(dict(zip(labels, histories, strict=True)), out,
                     title="train dashed, validation solid")
    print(out)
    return 0
