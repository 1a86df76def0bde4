"""`vaelab runs [DIR]`: a table of run directories; `vaelab runs compare RUN ... --out PNG`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError

__all__ = ["register"]

_SORTABLE = ("run", "status", "model", "z_dim", "dataset", "epochs", "best_val",
             "test_neg_elbo", "test_nll", "hours")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "runs", help="a table of the run directories under DIR (default runs/); "
        "`runs compare RUN RUN ... --out curves.png` overlays their loss curves",
        description="List every run directory under DIR: model, z_dim, dataset, epochs done / "
        "planned, best validation loss, the test negative ELBO and NLL where `vaelab evaluate` "
        "measured them, wall time, and whether the run is finished, interrupted (resumable), "
        "locked by a live training, or corrupt. Reads only; writes nothing. "
        "`vaelab runs compare RUN RUN ... --out curves.png` draws their loss curves together.")
    parser.add_argument("targets", nargs="*", metavar="DIR",
                        help="folder to list (default runs/), or `compare RUN RUN ...`")
    parser.add_argument("--json", action="store_true", help="one JSON object per run, as a list")
    parser.add_argument("--sort", choices=_SORTABLE, default="run", help="column to sort by")
    parser.add_argument("--out", default=None, metavar="PNG",
                        help="with compare: where to write the curves (default curves.png)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.targets[:1] == ["compare"]:
        return _compare(args.targets[1:], Path(args.out or "curves.png"))
    if len(args.targets) > 1:
        raise VaelabError("give one folder to list (or `vaelab runs compare RUN RUN ...`)")
    if args.out:
        raise VaelabError("--out goes with `vaelab runs compare RUN RUN ...`")
    return _list(Path(args.targets[0] if args.targets else "runs"), args.sort, args.json)


def _sort_key(column: str) -> Any:
    def key(row: Any) -> tuple[bool, Any]:
        value = {"epochs": row.epochs_done, "hours": row.seconds}.get(column,
                                                                      getattr(row, column, None))
        return (value is None, value if value is not None else 0)

    return key


def _list(root: Path, sort: str, as_json: bool) -> int:
    from vaelab.cli.output import format_table, print_json
    from vaelab.runs.inventory import find_runs, summarise

    rows = sorted((summarise(path, root) for path in find_runs(root)), key=_sort_key(sort))
    if as_json:
        print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        print(f"no run directories under {root}")
        return 0

    def shown(value: Any, digits: int = 2) -> Any:
        return "-" if value is None else round(value, digits) if isinstance(value, float) \
            else value

    table = [[r.run, r.status, shown(r.model), shown(r.z_dim), shown(r.dataset),
              f"{shown(r.epochs_done)}/{shown(r.epochs_planned)}", shown(r.best_val),
              shown(r.test_neg_elbo), shown(r.test_nll),
              shown(None if r.seconds is None else r.seconds / 3600, 3)] for r in rows]
    print(format_table(table, list(_SORTABLE)))
    for r in rows:
        if r.problem:
            print(f"{r.run}: {r.problem}")
        if r.holder:
            print(f"{r.run}: in use by {r.holder}")
    return 0


def _compare(targets: list[str], out: Path) -> int:
    from vaelab.pictures.plots import plot_loss_curves
    from vaelab.runs.layout import RunDir

    if len(targets) < 1:
        raise VaelabError("name the runs to compare: `vaelab runs compare RUN RUN ... "
                          "--out curves.png`")
    histories = {}
    for target in targets:
        run = RunDir(target)
        history = run.read_metrics()
        if not history:
            raise VaelabError(f"{run} has no epoch records ({run.metrics.name}); train it first "
                              "or leave it out")
        histories[run.path.name if targets.count(target) == 1 else target] = history
    if len(set(histories)) < len(targets):  # two runs with the same folder name
        histories = {target: RunDir(target).read_metrics() for target in targets}
    plot_loss_curves(histories, out, title="train dashed, validation solid")
    print(out)
    return 0
