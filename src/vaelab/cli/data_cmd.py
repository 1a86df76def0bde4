"""`vaelab data list`, `vaelab data download NAME` and `vaelab data check NAME_OR_PATH`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    data = sub.add_parser("data", help="list, download or check datasets")
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
    check = actions.add_parser(
        "check", help="read a dataset (a name or a path), check every file and describe it",
        description="Read a dataset as `vaelab train --dataset` would: check every file "
        "(shape, dtype, value range, labels, NaN), then show its format, splits, classes and "
        "content SHA-256. Exit code 2 with one line naming the file when something is wrong.")
    check.add_argument("dataset", metavar="NAME_OR_PATH")
    check.add_argument("--data-dir", default=None,
                       help="root folder of the registered datasets (default $VAELAB_DATA or "
                       "~/.cache/vaelab)")
    check.add_argument("--resize", action="store_true",
                       help="convert images that are not 28 x 28 grey, as `vaelab train "
                       "--resize` does")
    check.add_argument("--val-size", type=int, default=None, metavar="N",
                       help="validation images carved from the training set (default 5000 "
                       "or 10%%)")
    check.add_argument("--json", action="store_true",
                       help="print the provenance a run would record, as one JSON object")
    check.set_defaults(handler=check_dataset)


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


def _classes(names: tuple[str, ...], labels: Any) -> str:
    """The classes with their training counts, the first few only when there are many."""
    import numpy as np

    counts = np.bincount(labels, minlength=len(names))
    shown = [f"{name} ({count:,})" for name, count in zip(names, counts, strict=True)][:12]
    more = f", ... ({len(names) - 12} more)" if len(names) > 12 else ""
    return f"{len(names)} classes: {', '.join(shown)}{more}"


def check_dataset(args: argparse.Namespace) -> int:
    from vaelab.cli.output import format_table, print_json
    from vaelab.data.datasets import load_splits
    from vaelab.errors import VaelabError

    if args.val_size is not None and args.val_size < 0:
        raise VaelabError(f"--val-size must be an integer of at least 0, got {args.val_size}")
    splits = load_splits(args.dataset, args.data_dir, args.val_size, resize=args.resize)
    record = splits.provenance
    if args.json:
        print_json(record)
        return 0
    test = record["test_split"]
    if test["held_out"]:
        test_from = f"held out of the {test['of']:,} images read (seed {test['seed']})"
    else:
        test_from = record["files"].get("test_images", "the test files")
    val = record["val_split"]
    rows = [["train", len(splits.train_images), "the training part, less the validation split"],
            ["validation", len(splits.val_images),
             f"carved from the training part (seed {val['seed']})"],
            ["test", len(splits.test_images), test_from]]
    print(f"{splits.name}: {record['format']}, "
          + ("labelled" if splits.labelled else "unlabelled (no labels)"))
    print(format_table(rows, ["split", "images", "from"]))
    if splits.labelled:
        print(_classes(splits.class_names, splits.train_labels))
    else:
        print("no labels: training, evaluation, likelihood, pictures and the explorer work; "
              "the classifier-based measures (--fid, the study's class maps) are left out")
    files = ", ".join(f"{part} {name}" for part, name in record["files"].items())
    print(f"files: {files}")
    print(f"content SHA-256: {record['sha256']}  (cache name {splits.content_id})")
    return 0
