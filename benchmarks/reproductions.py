"""docs/reproductions.md's table and figure, rendered from bench_nll.py's records.

Every row of the table is one record (one run of ``bench_nll.py``) or says that the recipe has
not been measured on that kind of machine; every number in it is read from a record, beside the
command that measured it. The figure plots each record's test NLL against the passes it
trained (a point hollow when it was scored with fewer samples than the protocol's), with the
paper's figure as a star at the paper's length.

Usage:
  python benchmarks/reproductions.py                      # docs/reproductions/records/*.json
  python benchmarks/reproductions.py --records results/cpu/records results/gpu/records
Records to keep are copied into docs/reproductions/records/ first (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reproductions.md"
RECORDS = REPO / "docs" / "reproductions" / "records"
FIGURE = REPO / "docs" / "reproductions" / "nll_vs_passes.png"
BEGIN = "<!-- measured: written by benchmarks/reproductions.py from the records; do not edit -->"
END = "<!-- end of measured -->"
NOT_MEASURED = "not yet measured"
NO_GPU = "not measured: no GPU was available"
CPU_TARGETS = {"burda-vae-k1": 88.5}  # nats at K = 5000 on all test images, within an hour


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", nargs="+", type=Path, default=[RECORDS],
                        help="folders of records (default docs/reproductions/records)")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--gpu-missing", default=NO_GPU,
                        help=f"what a recipe's GPU row says without a record (default {NO_GPU!r})")
    return parser.parse_args(argv)


def read_records(folders: list[Path]) -> list[dict[str, Any]]:
    records = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            record = json.loads(path.read_text())
            if "nll" in record:  # a recipe the benchmark did not run has no number
                records.append(record)
    return records


def _duration(seconds: float) -> str:
    from vaelab.cli.runs_cmd import format_duration

    return format_duration(seconds)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(records: list[dict[str, Any]], gpu_missing: str) -> str:
    """The Markdown table: per recipe its CPU rows and its GPU rows, measured or said missing."""
    from vaelab.recipes import RECIPES

    head = ("| recipe | paper | pythae | vaelab test NLL (nats) | scored with | passes trained | "
            "training / scoring time | machine | command |")
    lines = [head, "|" + "---|" * 9]
    for name in RECIPES.names():
        recipe = RECIPES.get(name)
        paper = "-" if recipe.published is None else f"{recipe.published:.2f}"
        pythae = recipe.pythae.split(" ")[0] if recipe.pythae else "-"
        for kind, missing in (("cpu", NOT_MEASURED), ("gpu", gpu_missing)):
            mine = [r for r in records if r["recipe"] == name and r["machine"]["kind"] == kind]
            if not mine:
                lines.append(f"| `{name}` | {paper} | {pythae} | {missing} ({kind.upper()}) "
                             "| | | | | |")
            for r in mine:
                passes = f"{r['epochs']:,} of {r['recipe_epochs']:,}"
                passes += " (compressed)" if r["compressed"] else " (full)"
                if r["overrides"]:
                    passes += "; modified: " + ", ".join(f"{k}={v}"
                                                         for k, v in r["overrides"].items())
                scored = f"K = {r['samples']}, {r['test_images']:,} test images, {r['checkpoint']}"
                if r["evaluation"] != "the recipe's protocol":
                    scored += f" ({r['evaluation']})"
                lines.append(
                    f"| `{name}` | {paper} | {pythae} | {r['nll']:.2f} ± {r['nll_se']:.2f} | "
                    f"{scored} | {_cell(passes)} | {_duration(r['train_seconds'])} / "
                    f"{_duration(r['score_seconds'])} | {_cell(r['machine_text'])} | "
                    f"`{_cell(r['command'])}` |")
    return "\n".join(lines)


def verdicts(records: list[dict[str, Any]]) -> list[str]:
    """One sentence per CPU record that has a CPU target: how far from the paper, met or not."""
    lines = []
    for r in records:
        limit = CPU_TARGETS.get(r["recipe"])
        if limit is None or r["machine"]["kind"] != "cpu":
            continue
        gap = f"{r['nll'] - r['published']:+.2f} nats from the paper's {r['published']:.2f}"
        hours = r["train_seconds"] / 3600
        if r["evaluation"] != "the recipe's protocol":
            verdict = f"the target (at most {limit} nats) is not judged: {r['evaluation']}"
        elif hours > 1.0 and r["nll"] > limit:
            verdict = (f"the target of at most {limit} nats within one hour is missed on both "
                       f"counts: by {r['nll'] - limit:.2f} nats, after {hours:.2f} hours")
        elif hours > 1.0:
            verdict = (f"the target (at most {limit} nats within one hour) is not judged: "
                       f"it trained {hours:.2f} hours")
        elif r["nll"] <= limit:
            verdict = f"the target of at most {limit} nats within one hour is met"
        else:
            verdict = (f"the target of at most {limit} nats within one hour is missed by "
                       f"{r['nll'] - limit:.2f} nats")
        lines.append(f"`{r['recipe']}` on the CPU ({r['brief']}): {r['nll']:.2f} ± "
                     f"{r['nll_se']:.2f} nats after {_duration(r['train_seconds'])} of "
                     f"training, {gap}; {verdict}.")
    return lines


def figure(records: list[dict[str, Any]], path: Path) -> Any:
    """Test NLL against passes trained, one line per record, the papers' figures as stars;
    returns what the legibility check found (``vaelab.pictures.plots.Legibility``)."""
    from matplotlib.lines import Line2D

    from vaelab.pictures.plots import Legibility, drawing
    from vaelab.recipes import RECIPES

    path.parent.mkdir(parents=True, exist_ok=True)
    found: list[Legibility] = []
    with drawing(path, 820, 480, record=found) as fig:
        ax = fig.subplots()
        handles = []
        for i, r in enumerate(records):
            colour = f"C{i % 10}"
            points = r["curve"]
            xs, ys = [p["epochs"] for p in points], [p["nll"] for p in points]
            ax.plot(xs, ys, color=colour)
            protocol = RECIPES.get(r["recipe"]).nll_samples
            for p in points:
                full = p["samples"] >= protocol
                ax.plot(p["epochs"], p["nll"], "o", color=colour,
                        markerfacecolor=colour if full else "white")
            if r["published"] is not None:
                ax.plot(r["recipe_epochs"], r["published"], "*", color=colour, markersize=12)
            handles.append(Line2D([], [], color=colour,
                                  label=f"{r['recipe']}, {r['machine']['kind'].upper()}"))
        handles += [Line2D([], [], color="black", marker="o", linestyle="",
                           label="scored as the protocol (K = 5000)"),
                    Line2D([], [], color="black", marker="o", markerfacecolor="white",
                           linestyle="", label="with fewer samples"),
                    Line2D([], [], color="black", marker="*", markersize=12, linestyle="",
                           label="the paper, at its length")]
        ax.set_xscale("log")
        ax.set_xlabel("passes over the training set (epochs)")
        ax.set_ylabel("test NLL (nats)")
        ax.grid(alpha=0.3)
        ax.set_title("test NLL against training passes")
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return found[0]


def render(records: list[dict[str, Any]], doc_text: str, gpu_missing: str,
           figure_name: str) -> str:
    """``doc_text`` with its measured block rewritten from ``records``."""
    if BEGIN not in doc_text or END not in doc_text:
        raise SystemExit(f"the document lacks the lines {BEGIN!r} and {END!r}")
    before, rest = doc_text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    block = [table(records, gpu_missing), ""]
    for line in verdicts(records):
        block += [line, ""]
    if records:
        block.append(f"![test NLL against training passes]({figure_name})")
    else:
        block.append("No recipe has been measured yet, so there is no figure.")
    return f"{before}{BEGIN}\n{chr(10).join(block)}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records = read_records(args.records)
    figure_name = str(args.figure.resolve().relative_to(args.doc.resolve().parent))
    text = render(records, args.doc.read_text(), args.gpu_missing, figure_name)
    if records:
        figure(records, args.figure)
    args.doc.write_text(text)
    print(f"{args.doc}: {len(records)} measured rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
