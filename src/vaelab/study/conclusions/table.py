"""The machinery of the report's sentences: the table of numbers the rules read, the rules.

``Rule`` and ``Finding`` are described in the package's docstring (vaelab.study.conclusions);
``rule`` registers a sentence function with its condition, in report order. Every comparison a
rule makes goes through ``Table.compare``, which judges a difference against the noise measured
in the same study (``vaelab.study.noise``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaelab.study.noise import Comparison, compare

__all__ = ["RULES", "Finding", "Rule", "Stat", "Table", "conclusions", "findings", "rule"]


@dataclass(frozen=True)
class Stat:
    """One measure of one z_dim across seeds."""

    mean: float
    sd: float | None  # None for a single seed
    values: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stat:
        return cls(float(data["mean"]), None if data["sd"] is None else float(data["sd"]),
                   tuple(float(v) for v in data["values"]))


@dataclass(frozen=True)
class Table:
    """The numbers of results.json that the rules read."""

    z_dims: tuple[int, ...]
    seeds: tuple[int, ...]
    dataset: str
    epochs: int
    binarize: str
    bce_floor: float
    prior_samples: int
    prior_draws: int  # independent prior draws per run (1 with several seeds; 0: none)
    pr_k: int
    n_test: int
    active_threshold: float
    min_confidence: float
    labelled: bool  # a classifier measured the samples and maps
    class_names: tuple[str, ...]
    class_noun: str  # "digit" for MNIST, "class" otherwise
    trained_together: bool  # the runs were one stacked model: shared wall time
    sweep: dict[str, dict[int, Stat]]  # measure -> z_dim -> across seeds
    noise: dict[str, dict[int, float | None]]  # measure -> z_dim -> noise; None: unmeasured
    elbow: dict[str, Any]  # results["elbow"]
    references: dict[str, Any] | None  # results["references"]: rows and check
    abstention: dict[str, Any] | None
    one_d: dict[str, Any] | None
    two_d: dict[str, Any] | None

    @classmethod
    def from_results(cls, results: dict[str, Any]) -> Table:
        config, sweep = results["config"], results["sweep"]
        z_dims = tuple(sorted(int(z) for z in sweep))
        measures = [k for k, v in next(iter(sweep.values())).items() if isinstance(v, dict)]
        noise = {m: {int(z): entry["value"] for z, entry in per_z.items()}
                 for m, per_z in results.get("noise", {}).items()}
        return cls(
            z_dims=z_dims, seeds=tuple(results["seeds"]), dataset=config["train"]["dataset"],
            epochs=int(config["train"]["epochs"]), binarize=results["pixels"]["binarize"],
            bce_floor=float(results["pixels"]["bce_floor"]),
            prior_samples=int(config["prior_samples"]),
            prior_draws=int(results.get("prior_draws", 1)), pr_k=int(config.get("pr_k", 3)),
            n_test=int(results["n_test"]),
            active_threshold=float(config["active_threshold"]),
            min_confidence=float(config["min_confidence"]),
            labelled=bool(results.get("labelled", True)),
            class_names=tuple(results["class_names"]),
            class_noun=str(results.get("class_noun", "digit")),
            trained_together=bool(results.get("trained_together")),
            sweep={m: {z: Stat.from_dict(sweep[str(z)][m]) for z in z_dims} for m in measures},
            noise=noise, elbow=results["elbow"], references=results.get("references"),
            abstention=results.get("abstention"),
            one_d=results.get("one_d"), two_d=results.get("two_d"))

    @property
    def several(self) -> bool:
        return len(self.seeds) > 1

    @property
    def ceiling(self) -> float:
        """log N: the most I_q(x; z) can be on N test images."""
        return math.log(self.n_test)

    def has(self, measure: str) -> bool:
        return measure in self.sweep

    def mean(self, measure: str, z_dim: int) -> float:
        return self.sweep[measure][z_dim].mean

    def noise_of(self, measure: str, z_dim: int) -> float | None:
        """The noise of ``measure`` at ``z_dim``; None where none was measured."""
        return self.noise.get(measure, {}).get(z_dim)

    def compare(self, measure: str, a: int, b: int) -> Comparison:
        """mean(b) - mean(a), judged against the combined noise of the two."""
        return compare(self.mean(measure, a), self.mean(measure, b),
                       self.noise_of(measure, a), self.noise_of(measure, b))

    def show(self, measure: str, z_dim: int, digits: int) -> str:
        """"100.40", or "100.40 ± 0.31" with several seeds."""
        stat = self.sweep[measure][z_dim]
        text = f"{stat.mean:.{digits}f}"
        return text if stat.sd is None else f"{text} ± {stat.sd:.{digits}f}"

    def listing(self, measure: str, digits: int = 2) -> str:
        return ", ".join(f"z_dim={z}: {self.show(measure, z, digits)}" for z in self.z_dims)

    def argmin(self, measure: str) -> int:
        return min(self.z_dims, key=lambda z: (self.mean(measure, z), z))

    def runner_up(self, measure: str) -> int:
        """The z_dim with the second lowest mean (two or more z_dims)."""
        return sorted(self.z_dims, key=lambda z: (self.mean(measure, z), z))[1]

    def at_ceiling(self, z_dim: int) -> bool:
        """I_q within the noise of log N: the most N images can show."""
        gap = compare(self.mean("i_q", z_dim), self.ceiling, self.noise_of("i_q", z_dim), 0.0)
        return gap.measured and not gap.separated


@dataclass(frozen=True)
class Rule:
    """One kind of sentence and the condition under which the report writes it."""

    name: str
    section: str  # the report section the sentence appears in
    condition: str  # the condition in words
    when: Callable[[Table], bool]
    say: Callable[[Table], str]


@dataclass(frozen=True)
class Finding:
    """A sentence the report writes, with the rule that wrote it."""

    rule: str
    section: str
    sentence: str


RULES: list[Rule] = []


def rule(name: str, section: str, condition: str, when: Callable[[Table], bool]
          ) -> Callable[[Callable[[Table], str]], Callable[[Table], str]]:
    def register(say: Callable[[Table], str]) -> Callable[[Table], str]:
        RULES.append(Rule(name, section, condition, when, say))
        return say
    return register


def findings(results: dict[str, Any]) -> list[Finding]:
    """The sentence of every rule whose condition holds for ``results``, in rule order."""
    table = Table.from_results(results)
    return [Finding(r.name, r.section, r.say(table)) for r in RULES if r.when(table)]


def conclusions(results: dict[str, Any]) -> list[str]:
    """Every generated sentence for ``results``."""
    return [f.sentence for f in findings(results)]
