"""`vaelab data list` and `vaelab data download NAME`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    data = sub.add_parser("data", help="list or download datasets")
    actions = data.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(data)
    )
    lst = actions.add_parser("list", help="show each dataset and where its files were found")
    lst.add_argument("--data-dir", default=None)
    lst.set_defaults(handler=list_datasets)
    dl = actions.add_parser("download", help="fetch a dataset from its mirrors, checksum-verified")
    dl.add_argument("name", metavar="NAME")
    dl.add_argument(
        "--data-dir", default=None, help="root folder (default $VAELAB_DATA or ~/.cache/vaelab)"
    )
    dl.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a stalled mirror is skipped"
    )
    dl.set_defaults(handler=download)


def list_datasets(args: argparse.Namespace) -> int:
    from vaelab.cli.output import format_table
    from vaelab.data.datasets import dataset_registry, find_dataset, search_dirs
    from vaelab.errors import VaelabError

    rows = []
    for name in dataset_registry.names():
        spec = dataset_registry.get(name)
        try:
            where = str(find_dataset(name, args.data_dir)["train_images"].parent)
        except VaelabError:
            where = (
                "missing (looked in "
                + ", ".join(str(d) for d in search_dirs(spec, args.data_dir))
                + ")"
            )
        rows.append([name, spec.description, where])
    print(format_table(rows, ["dataset", "contents", "found in"]))
    print(
        "\nCredits: "
        + "; ".join(sorted({dataset_registry.get(n).licence for n in dataset_registry}))
    )
    return 0


def download(args: argparse.Namespace) -> int:
    from vaelab.data.datasets import dataset_registry
    from vaelab.data.download import download_dataset

    spec = dataset_registry.get(args.name)
    if not spec.mirrors:
        print(f"{args.name} ships with vaelab; nothing to download", file=sys.stderr)
        return 0
    if args.timeout <= 0:
        from vaelab.errors import VaelabError

        raise VaelabError(f"--timeout must be a positive number of seconds, got {args.timeout}")

    def progress(url: str, done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            size = f"/{total / 1e6:.1f}" if total else ""
            print(f"\r{url.rsplit('/', 1)[-1]}: {done / 1e6:.1f}{size} MB", end="", file=sys.stderr)

    folder = download_dataset(args.name, args.data_dir, timeout=args.timeout, progress=progress)
    print(f"\n{args.name} is ready in {folder}", file=sys.stderr)
    return 0
