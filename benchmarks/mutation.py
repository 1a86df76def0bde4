"""Mutation testing of the modules whose numbers users cite: does a broken line fail a test?

mutmut (``pip install -r requirements-mutation.txt``) changes one operator, constant or call at a
time in the module, runs the tests that reach the changed function, and counts the mutant as
killed when one of them fails. Each module is mutated on its own, in a scratch copy of the
repository, with only the test files it needs, so a whole run fits in half an hour on 2 cores.
Not part of CI: it takes minutes per module. How to run it and the scores it measured are in
docs/testing.md.

    python benchmarks/mutation.py                  # the modules tested whole (see WHOLE)
    python benchmarks/mutation.py likelihood idx   # some modules, by name
    python benchmarks/mutation.py --all            # every module below
    python benchmarks/mutation.py --list           # the modules and their tests
    python benchmarks/mutation.py conclusions --sample 200   # 200 drawn at random

A survivor is either a missing test or an equivalent mutant, one no test can tell from the
original (the same numbers by another route). Equivalent mutants are listed in ``EQUIVALENT``
with why; the score is killed / (mutants - equivalent). Mutants that ran past their time limit
(a loop made endless) count as killed, as a user would notice them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    """One module (or package folder) to mutate and the tests that check it."""

    paths: tuple[str, ...]  # files or folders under src/, mutated
    tests: tuple[str, ...]  # pytest node ids or files: what mutmut may run against them


TARGETS: dict[str, Target] = {
    "losses": Target(("src/vaelab/losses.py",), (
        "tests/test_losses.py",
        "tests/test_elbo.py",
        "tests/test_zoo.py::test_kl_of_each_model_against_torch_distributions",
        "tests/test_zoo.py::test_beta_weights_the_kl",
        "tests/test_zoo.py::test_importance_weighted_objective",
        "tests/test_likelihood.py::test_k1_estimate_is_the_elbo_in_expectation",
        "tests/test_stacked_grad.py",
    )),
    "likelihood": Target(("src/vaelab/evaluation/likelihood.py",), (
        "tests/test_likelihood.py",
    )),
    "elbo": Target(("src/vaelab/evaluation/elbo.py",), (
        "tests/test_elbo.py",
        "tests/test_evaluate_cmd.py::test_bce_floor_is_the_mean_pixel_entropy",
        "tests/test_evaluate_cmd.py::test_bce_floor_is_the_bce_of_predicting_the_pixels_themselves",
    )),
    "idx": Target(("src/vaelab/data/idx.py",), (
        "tests/test_idx.py",
        "tests/test_fuzz.py::test_idx_reader_never_trusts_a_file",
    )),
    "sample_quality": Target(("src/vaelab/evaluation/sample_quality.py",), (
        "tests/test_sample_quality.py",
    )),
    "elbow": Target(("src/vaelab/study/elbow.py",), (
        "tests/test_elbow.py",
    )),
    "conclusions": Target(("src/vaelab/study/conclusions",), (
        "tests/test_conclusions.py",
    )),
    "schedule": Target(("src/vaelab/training/schedule.py",), (
        "tests/test_schedule.py",
        "tests/test_step.py",
        "tests/test_lifecycle.py::test_epoch_permutation_is_a_permutation",
    )),
}
# Tested whole by default, together in about 25 minutes on 2 cores; the two larger modules
# take longer whole (their tests train a classifier or write every report section) and are
# measured on a random sample of their mutants (--sample).
WHOLE = ("losses", "likelihood", "elbo", "idx", "elbow", "schedule")

# Survivors judged equivalent: (target, function, the mutated line as mutmut shows it) -> why.
_ON_THE_CPU = ("the same rows on the CPU, whose entry is also the fallback; it differs only on a "
               "device type missing from DEFAULT_MAX_ROWS, and the suite runs on the CPU")
_FLOAT_ANYWAY = ("np.arange's default int64 levels divided by 255.0 are the same float64 "
                 "values as float64 levels divided by it")
_LENGTHS_CHECKED = ("the lengths are compared just before, so zip never meets two of different "
                    "lengths and strict=True has nothing to refuse")
_MIN_FROM_I = ("for every i up to the elbow the lowest error lies at i or after it (were it "
               "before, the elbow would be there), so the search over all positions finds the "
               "same one")
_LAST_ANYWAY = ("the only i whose best from there on is itself is the elbow, the loop's last "
                "step, so stopping there and going on to the end are the same")
_INT64 = ("NumPy's default integer is int64 on 64-bit Linux and macOS (and everywhere from NumPy "
          "2), and no product of dimensions under the limits comes near its overflow")
_SHORT_HEAD = ("a header shorter than 8 bytes fails the length test that follows whatever rank "
               "is read from it, with the same message")
_FEW_BYTES = ("every call but the first gets nothing (a stream that ends or stops early), and "
              "the first asks for at most 40 bytes more: a stream past the limit is refused "
              "the same way, the memory bound moves by those bytes only")
_CUDA_FORK = ("on the CPU: there is no GPU generator to fork, so every device list forks the "
              "same nothing; on a GPU, tests/test_likelihood.py's CUDA test kills the lists "
              "that leave the GPU out")
_ONE_GPU = ("on the CPU as on a one-GPU machine: forking every GPU forks this one; it differs "
            "only with several GPUs")
_ACCUMULATOR = ("the running log-sum-exp starts at -inf, which float32 holds exactly, and the "
                "first chunk's float64 sum promotes it to float64 on the images' device: on "
                "the CPU the same values")
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("conclusions", "_gaps",
     'found |= {a for a, r in zip(measure["at"], measure["reached"], strict=None) if r}'):
        "reached is built from at, one entry for each (study/analysis.py), so the two lists "
        "never differ in length and strict=True has nothing to refuse",
    ("conclusions", "_somewhere", "strict=None) if ok]"):
        "the elbow rule gives one verdict per tolerance (study/analysis.py), so the "
        "tolerances and their matches never differ in length and strict=True has nothing to "
        "refuse",
    ("conclusions", "_best_listing",
     'for x, b in zip(t.elbow["tolerances"], found["best_at"], strict=False))'):
        "the second rule gives one z_dim per tolerance (study/analysis.py), so the lists "
        "never differ in length and strict=True has nothing to refuse",
    ("conclusions", "judged", "if found.noise is None and found.bound is None:"):
        "a comparison's bound is None exactly when its noise is (study/noise.py), so either "
        "test of the two gives the same answer",
    ("conclusions", "_bce_verdict",
     'return ("the larger model reconstructs the test images better" if found.difference <= 0'):
        "the verdict is reached only for a separated difference, which is never 0",
    ("sample_quality", "precision_recall",
     "fake_inside = torch.zeros(len(fake_t), dtype=None)"):
        "a float tensor of zeros and ones has the same mean as the booleans it holds",
    ("likelihood", "estimate_nll",
     'se = float(log_px.std() / math.sqrt(n)) if n > 1 else float("NAN")'):
        'float("NAN") is the same NaN as float("nan")',
    ("likelihood", "estimate_nll", "devices = None"): _ONE_GPU,
    ("likelihood", "estimate_nll",
     "with eval_mode(model), torch.random.fork_rng(devices=None):"): _ONE_GPU,
    ("likelihood", "estimate_nll",
     'devices = [device.index and 0] if device.type == "cuda" else []'):
        "on the CPU the list is empty either way; on a GPU it differs only for an index other "
        "than 0 or None",
    **{("likelihood", "estimate_nll", line): _CUDA_FORK for line in (
        'devices = [device.index or 0] if (device.type == "cuda") and False else []',
        'devices = [device.index or 1] if device.type == "cuda" else []',
        'devices = [device.index or 0] if device.type == "XXcudaXX" else []',
        'devices = [device.index or 0] if device.type == "CUDA" else []')},
    **{("likelihood", "log_likelihood", line): _ACCUMULATOR for line in (
        "running = torch.full((len(x),), -math.inf, device=x.device)",
        "running = torch.full((len(x),), -math.inf, dtype=torch.float64, )",
        "running = torch.full((len(x),), -math.inf, dtype=None, device=x.device)",
        "running = torch.full((len(x),), -math.inf, dtype=torch.float64, device=None)")},
    ("idx", "_claimed_size", 'if head[:3] != b"\\x00\\x00\\x08" or not 1 <= rank <= 5 or '
     "len(head) < 4 + 4 * rank:"):
        "the head holds at most 20 bytes, so rank 5 (a 24-byte header) fails the length test "
        "that follows, with the same message",
    ("idx", "_claimed_size", "return 4 + 4 * rank + int(np.prod(dims, dtype=None))"): _INT64,
    ("idx", "_claimed_size", "return 4 + 4 * rank + int(np.prod(dims, ))"): _INT64,
    ("idx", "_claimed_size", "rank = head[3] if len(head) > 4 else 0"): _SHORT_HEAD,
    ("idx", "_claimed_size", "rank = head[3] if len(head) >= 5 else 0"): _SHORT_HEAD,
    ("idx", "_claimed_size", "rank = head[3] if len(head) >= 4 else 1"): _SHORT_HEAD,
    ("idx", "_gunzip", "decomp = zlib.decompressobj(17 + zlib.MAX_WBITS)"):
        "wbits 32 detects the header itself and reads gzip as 31 does; only data that starts "
        "with the gzip magic comes here",
    ("idx", "_gunzip", "while not decomp.eof and total < limit:"):
        "total equals the limit only after a call returned less than it was asked for, which "
        "happens only at the stream's end or where it stops, so the next call would get nothing",
    ("idx", "_gunzip",
     "chunk = decomp.decompress(decomp.unconsumed_tail, limit + 1 + total)"): _FEW_BYTES,
    ("idx", "_gunzip",
     "chunk = decomp.decompress(decomp.unconsumed_tail, limit + 2 - total)"): _FEW_BYTES,
    ("idx", "read_idx_bytes", 'zero, dtype, got_rank = struct.unpack(">hbb", data[:4])'):
        "read signed, 0 stays 0, 8 stays 8 and a rank byte above 127 turns negative, which "
        "matches no rank either",
    ("idx", "read_idx_bytes", "expected = count * int(np.prod(rest, dtype=np.int64)) if (rest) "
     "or True else count"): "the product of no dimensions is 1, so count * 1 is count",
    ("idx", "read_idx_bytes",
     "expected = count * int(np.prod(rest, dtype=None)) if rest else count"): _INT64,
    ("idx", "read_idx_bytes", "expected = count * int(np.prod(rest, )) if rest else count"):
        _INT64,
    # zip(..., strict=True) mutated to the three spellings of strict=False.
    **{("elbow", function, line.format(strict)): why
       for function, line, why in (
           ("elbow", "pairs = sorted(zip(z_dims, errors, {}))", _LENGTHS_CHECKED),
           ("best_elbow",
            "return min(z for z, e in zip(z_dims, errors, {}) if e - best <= allowed)",
            _LENGTHS_CHECKED),
           ("elbow_margin", "pairs = sorted(zip(z_dims, errors, {}))",
            "the elbow rule it calls compares the lengths first and refuses a mismatch, so "
            "zip never meets two of different lengths"))
       for strict in ("strict=None", "", "strict=False")},
    ("elbow", "elbow_margin",
     "after = min(range(len(values)), key=lambda j: (values[j], j))"): _MIN_FROM_I,
    ("elbow", "elbow_margin", "break"): _LAST_ANYWAY,
    ("elbo", "bce_floor", "p = np.arange(256, dtype=None) / 255.0"): _FLOAT_ANYWAY,
    ("elbo", "bce_floor", "p = np.arange(256, ) / 255.0"): _FLOAT_ANYWAY,
    ("elbo", "bce_floor", "pixels = np.asarray(images_u8.cpu() if (isinstance(images_u8, "
     "torch.Tensor)) and False else images_u8)"):
        "np.asarray reads a CPU tensor as .cpu() would; only a tensor on a GPU tells them "
        "apart, and the suite runs on the CPU",
    ("schedule", "epoch_permutation", "return torch.randperm(n, generator=generator).to(None)"):
        "the permutation is drawn on the CPU, so .to(None) leaves it where .to(device) puts it "
        "for a CPU run; only a GPU run tells them apart",
    ("schedule", "kl_weight", "progress = (epoch + step / max(steps, 2)) / config.kl_warmup"):
        "the guard differs only for steps < 2, where the step inside the epoch is 0 and 0 / 1 "
        "equals 0 / 2",
    ("likelihood", "estimate_nll",
     'rows = max_rows or DEFAULT_MAX_ROWS.get(None, DEFAULT_MAX_ROWS["cpu"])'): _ON_THE_CPU,
    ("likelihood", "estimate_nll",
     "rows = max_rows or DEFAULT_MAX_ROWS.get(device.type, None)"): _ON_THE_CPU,
    ("likelihood", "estimate_nll",
     "rows = max_rows or DEFAULT_MAX_ROWS.get(device.type, )"): _ON_THE_CPU,
}

# mutmut's words for a mutant's fate -> this report's.
_FATES = {"killed": "killed", "survived": "survived", "timeout": "timed out",
          "no tests": "no tests", "suspicious": "suspicious", "segfault": "killed",
          "caught by type check": "killed", "skipped": "skipped", "not checked": "not checked"}


def _scratch_copy(target: Target, into: Path) -> None:
    """src/, tests/ and pyproject.toml, with mutmut's settings for this target appended."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    shutil.copytree(REPO / "src", into / "src", ignore=ignore)
    shutil.copytree(REPO / "tests", into / "tests", ignore=ignore)
    only = [p if p.endswith(".py") else f"{p}/*" for p in target.paths]
    settings = {
        "source_paths": ["src/vaelab"],
        "only_mutate": only,
        # One process per test file run, in a fixed order, one thread: what mutmut expects.
        # pytest's cache stays: the tests keep the classifier they train there (conftest.py).
        "pytest_add_cli_args": ["-n", "0", "-p", "no:randomly",
                                "-W", "ignore::pytest.PytestUnraisableExceptionWarning"],
        "pytest_add_cli_args_test_selection": list(target.tests),
        # torch does not survive a fork of a process that ran it: fork from a clean server.
        "process_isolation": "forkserver",
    }
    lines = ["", "[tool.mutmut]", *(f"{key} = {json.dumps(value)}" for key, value in
                                     settings.items())]
    (into / "pyproject.toml").write_text(
        (REPO / "pyproject.toml").read_text(encoding="utf-8") + "\n".join(lines) + "\n",
        encoding="utf-8")


def _mutmut(args: list[str], cwd: Path, env: dict[str, str], log: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mutmut", *args]
    if log is None:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    with log.open("w") as out:
        return subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              text=True)


def _mutated_line(name: str, cwd: Path, env: dict[str, str]) -> str:
    """The line as the mutant has it (the first '+' line of mutmut's diff)."""
    shown = _mutmut(["show", name], cwd, env).stdout
    added = [line[1:].strip() for line in shown.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else ""


_NO_MUTANT = "no-mutant-is-called-this"  # a filter that matches nothing: generate, test none
SAMPLE_SEED = 0  # the draw of --sample, fixed so a rerun tests the same mutants


def _mutant_names(root: Path) -> list[str]:
    """Every mutant mutmut generated under ``root/mutants``, by the name ``mutmut run`` takes
    (the keys of its ``.meta`` files)."""
    names: list[str] = []
    for meta in sorted((root / "mutants" / "src").rglob("*.py.meta")):
        names += json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return names


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a share ``successes / n``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_target(name: str, jobs: int, keep: Path | None, sample: int | None = None
               ) -> dict[str, object]:
    target = TARGETS[name]
    root = Path(tempfile.mkdtemp(prefix=f"vaelab-mutation-{name}-", dir=keep))
    _scratch_copy(target, root)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # mutmut puts its mutated copy first on sys.path itself; another PYTHONPATH hides it.
    env.update(OMP_NUM_THREADS="1", VAELAB_HYPOTHESIS_PROFILE="dev")
    started = time.perf_counter()
    chosen: list[str] = []
    generated = 0
    if sample is not None:
        # Generate every mutant and the test map (no mutant matches the filter), then test a
        # fixed random sample of them.
        _mutmut(["run", "--max-children", str(jobs), _NO_MUTANT], root, env,
                log=root / "generate.log")
        names = _mutant_names(root)
        generated = len(names)
        chosen = sorted(random.Random(SAMPLE_SEED).sample(names, min(sample, len(names))))
    done = _mutmut(["run", "--max-children", str(jobs), *chosen], root, env,
                   log=root / "mutmut.log")
    seconds = time.perf_counter() - started
    listed = _mutmut(["results", "--all", "true"], root, env).stdout
    fates: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match and (not chosen or match.group(1) in chosen):
            fates[match.group(1)] = _FATES.get(match.group(2).strip(), match.group(2).strip())
    survivors, equivalent = [], []
    for mutant, fate in sorted(fates.items()):
        if fate not in ("survived", "no tests"):
            continue
        function = re.sub(r"^x_|__mutmut_\d+$", "", mutant.rsplit(".", 1)[-1])
        line = _mutated_line(mutant, root, env)
        why = EQUIVALENT.get((name, function, line))
        (equivalent if why else survivors).append(
            {"mutant": mutant, "function": function, "line": line, **({"why": why} if why else {})})
    counts = {fate: list(fates.values()).count(fate) for fate in sorted(set(fates.values()))}
    killed = counts.get("killed", 0) + counts.get("timed out", 0)
    judged = len(fates) - len(equivalent)  # a mutant no test reaches is a missing test
    result: dict[str, object] = {
        "target": name, "paths": list(target.paths), "mutants": len(fates), "counts": counts,
        "equivalent": equivalent, "survivors": survivors, "seconds": round(seconds),
        "score": round(killed / judged, 4) if judged else None, "exit_code": done.returncode,
        "scratch": str(root),
    }
    if sample is not None:
        low, high = wilson(killed, judged)
        result.update(sampled_from=generated, interval=[round(low, 4), round(high, 4)])
    if keep is None and done.returncode == 0:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _print(result: dict[str, object]) -> None:
    counts = result["counts"]
    assert isinstance(counts, dict)
    score = result["score"]
    shown = "n/a" if score is None else f"{100 * float(score):.1f} %"  # type: ignore[arg-type]
    drawn = (f" (a random sample of the {result['sampled_from']} generated)"
             if "sampled_from" in result else "")
    if "interval" in result:
        low, high = result["interval"]  # type: ignore[misc]
        shown += f", 95 % interval {100 * low:.1f}-{100 * high:.1f} %"
    print(f"\n{result['target']} ({', '.join(result['paths'])}): {result['mutants']} mutants"  # type: ignore[arg-type]
          f"{drawn}, "
          f"{counts.get('killed', 0)} killed, {counts.get('survived', 0)} survived "
          f"({len(result['equivalent'])} equivalent), {counts.get('timed out', 0)} timed out, "  # type: ignore[arg-type]
          f"{counts.get('no tests', 0)} reached by no test; score {shown}, "
          f"{result['seconds']} s")
    for survivor in result["survivors"]:  # type: ignore[attr-defined]
        print(f"  survived: {survivor['mutant']}: {survivor['line']}")
    for survivor in result["equivalent"]:  # type: ignore[attr-defined]
        print(f"  equivalent: {survivor['mutant']}: {survivor['line']} ({survivor['why']})")
    if result["exit_code"] != 0:
        print(f"  mutmut exited {result['exit_code']}; its log is in {result['scratch']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="MODULE",
                        help=f"modules to mutate, of {', '.join(TARGETS)} "
                             f"(default: {' '.join(WHOLE)})")
    parser.add_argument("--all", action="store_true", help="every module")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: the CPU count)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each scratch copy under this folder (default: removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="test N mutants drawn at random (fixed seed) of each module, for "
                             "modules too large to test whole; the score then comes with its "
                             "95 %% interval")
    args = parser.parse_args(argv)
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name}{'' if name in WHOLE else ' (sampled: --sample N)'}: "
                  f"{' '.join(target.paths)}")
            for test in target.tests:
                print(f"    {test}")
        return 0
    names = list(TARGETS) if args.all else (args.targets or list(WHOLE))
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    import torch

    print(f"torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} CPUs, --jobs {args.jobs}")
    results = []
    for name in names:
        result = run_target(name, args.jobs, args.keep, args.sample)
        _print(result)
        results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
