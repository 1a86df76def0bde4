"""The report's generated sentences: each from a rule with a stated condition on the numbers.

A ``Rule`` has a name, the report section its sentence belongs to, its condition in words, the
condition as a function of the ``Table`` (the numbers of results.json the rules read), and the
sentence as a function of the same table. ``findings(results)`` applies every rule in order and
keeps the sentences of those whose condition holds. Rules that can contradict each other come
in groups whose conditions exclude one another (one seed / several seeds; for each elbow
measure: matches the original / depends on the tolerance / never matches / cannot be checked).
The rules register in report order: the modules below are imported in that order.
"""

from __future__ import annotations

from vaelab.study.conclusions.table import (
    IDLE_NATS,
    RULES,
    Finding,
    Rule,
    Stat,
    Table,
    conclusions,
    findings,
)

from vaelab.study.conclusions import units, samples, elbow, latent  # noqa: F401  isort: skip

__all__ = ["IDLE_NATS", "RULES", "Finding", "Rule", "Stat", "Table", "conclusions", "findings"]
