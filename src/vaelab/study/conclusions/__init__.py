"""The report's generated sentences: each from a rule with a stated condition on the numbers.

A ``Rule`` has a name, the report section its sentence belongs to, its condition in words, the
condition as a function of the ``Table`` (the numbers of results.json the rules read), and the
sentence as a function of the same table. ``findings(results)`` applies every rule in order and
keeps the sentences of those whose condition holds. Rules that can contradict each other come
in groups whose conditions exclude one another (one seed / several seeds; a difference beyond
its noise / within it; for each elbow measure: matches the original / depends on the tolerance /
never matches / cannot be checked). Every comparison is judged against noise measured in the
same study (``vaelab.study.noise``). The rules register in report order: the modules below are
imported in that order.
"""

from __future__ import annotations

from vaelab.study.conclusions.table import (
    RULES,
    Finding,
    Rule,
    Stat,
    Table,
    conclusions,
    findings,
)

from vaelab.study.conclusions import (  # noqa: F401  isort: skip
    training, losses, information, units, pixels, samples, elbow, latent)

__all__ = ["RULES", "Finding", "Rule", "Stat", "Table", "conclusions", "findings"]
