"""What the report step of a finished study costs, stage by stage, and what its newer measures add.

Runs `vaelab report` on a copy of a study (nothing is trained but the classifier, once, when the
copy has none of the current kind), then again ``--repeats`` times, and reads the seconds of each
stage that ``vaelab.study.analysis`` keeps in results.json. Prints the median of each stage, the
report's wall time, and the overhead of the measures added in the study's second pass
(``NEWER``): their seconds over the report's other seconds, all measured in the same runs.

    python benchmarks/bench_report.py ../shared/studies/seed-100ep --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The stages of the study's second pass: I_q and the marginal KL, the further prior draws that
# give a one-seed study its draw-to-draw noise, the noise table, the reference rows, the
# abstention rates and the rate-distortion figure.
NEWER = ("I_q and marginal KL", "further prior draws", "noise table", "reference rows",
         "abstention rates", "rate-distortion figure")


def report_once(study: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """One `vaelab report`: its wall seconds and the stage seconds it wrote."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaelab", "report", str(study)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    results = json.loads((study / "results.json").read_text(encoding="utf-8"))
    return wall, {name: float(s) for name, s in results.get("seconds", {}).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a finished study directory (copied, not changed)")
    parser.add_argument("--repeats", type=int, default=3, help="timed reports after the first")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the reports (default: torch's own choice)")
    args = parser.parse_args(argv)
    import torch

    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{os.cpu_count()} CPUs" + (f", {args.threads} thread(s)" if args.threads else ""))
    work = Path(tempfile.mkdtemp(prefix="vaelab-bench-report-"))
    try:
        copy = work / args.study.name
        shutil.copytree(args.study, copy, ignore=shutil.ignore_patterns("figures", "report.*"))
        wall, _ = report_once(copy, env)
        print(f"first report (trains the classifier if the copy has none of the current kind): "
              f"{wall:.1f} s")
        walls, stages = [], []
        for _ in range(args.repeats):
            wall, seconds = report_once(copy, env)
            walls.append(wall)
            stages.append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = list(stages[0])
    medians = {name: statistics.median(s.get(name, 0.0) for s in stages) for name in names}
    wall = statistics.median(walls)
    print(f"\n{'stage':<32} {'median s':>9}  {'share of wall':>13}  newer")
    for name in names:
        print(f"{name:<32} {medians[name]:>9.2f}  {100 * medians[name] / wall:>12.1f} %"
              f"  {'yes' if name in NEWER else ''}")
    staged = sum(medians.values())
    print(f"{'(outside the stages: start-up, report writing)':<32} {wall - staged:>9.2f}  "
          f"{100 * (wall - staged) / wall:>12.1f} %")
    newer = sum(medians.get(name, 0.0) for name in NEWER)
    print(f"\nreport wall time, median of {len(walls)}: {wall:.1f} s "
          f"({', '.join(f'{w:.1f}' for w in walls)})")
    print(f"newer measures: {newer:.1f} s; the rest: {wall - newer:.1f} s; "
          f"overhead {100 * newer / (wall - newer):.1f} % of the report without them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
