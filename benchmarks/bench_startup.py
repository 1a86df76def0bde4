"""Start-up time of `vaelab --help` against a bare Python start, medians of fresh processes.

Also checks that printing the help imports neither torch nor matplotlib. Bytecode caching
matters for a cold import of argparse, dataclasses and vaelab's own modules: with
PYTHONDONTWRITEBYTECODE=1 (set on some development machines) every start recompiles them,
so both settings are measured; the bytecode case uses a private PYTHONPYCACHEPREFIX.

Usage: python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHECK_LIGHT = (
    "import sys\n"
    "from vaelab.cli.main import build_parser\n"
    "build_parser().format_help()\n"
    "heavy = sorted(m for m in ('torch', 'matplotlib', 'numpy', 'PIL') if m in sys.modules)\n"
    "print(','.join(heavy))\n"
)


def median_seconds(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    heavy = subprocess.run([sys.executable, "-c", _CHECK_LIGHT], capture_output=True, text=True,
                           check=True).stdout.strip()
    print(f"modules imported by `vaelab --help`: heavy ones: {heavy or 'none'}")
    script = Path(sys.executable).with_name("vaelab")
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "python -m vaelab --help": [sys.executable, "-m", "vaelab", "--help"]}
    if script.is_file():
        commands[f"{script} --help"] = [str(script), "--help"]
    cache = Path(tempfile.mkdtemp(prefix="vaelab-pycache-"))
    try:
        settings = {
            "no bytecode cache": {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            "bytecode cached": {k: v for k, v in os.environ.items()
                                if k != "PYTHONDONTWRITEBYTECODE"} | {
                "PYTHONPYCACHEPREFIX": str(cache)},
        }
        print(f"{'command':<48} " + "  ".join(f"{name:>18}" for name in settings))
        for label, cmd in commands.items():
            cells = []
            for env in settings.values():
                subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)  # warm caches
                cells.append(f"{median_seconds(cmd, env, args.runs):>16.3f} s")
            print(f"{label:<48} " + "  ".join(cells))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
