"""Rules of the elbow section: the rule's range, its verdicts against the original study."""

from __future__ import annotations

from functools import partial
from typing import Any

from vaelab.study.conclusions.table import RULES, Rule, Table, rule
from vaelab.study.conclusions.wording import and_list, tolerance
from vaelab.study.elbow import grid_gap
from vaelab.study.noise import MARGIN

# --- Elbow -----------------------------------------------------------------------------------

_ELBOW = "Elbow"


def _measure(t: Table, key: str) -> dict[str, Any]:
    return t.elbow["measures"][key]  # type: ignore[no-any-return]


def _verdicts(t: Table, key: str) -> str:
    """"not reached by z_dim = 20 at 2.5 and 5 %, z_dim = 10 at 10 %"."""
    found = _measure(t, key)
    groups: dict[tuple[int, bool], list[float]] = {}
    for tol, at, reached in zip(t.elbow["tolerances"], found["at"], found["reached"],
                                strict=True):
        groups.setdefault((at, reached), []).append(tol)
    parts = []
    for (at, reached), tols in groups.items():
        pcts = and_list([f"{100 * x:g}" for x in tols]) + " %"
        parts.append(f"z_dim = {at} at {pcts}" if reached else
                     f"not reached by z_dim = {at} at {pcts}")
    return ", ".join(parts)


def _matches(t: Table, key: str) -> list[bool]:
    found = _measure(t, key)
    original = t.elbow["original"]
    return [at == original and reached for at, reached in zip(found["at"], found["reached"],
                                                              strict=True)]


def _checkable(t: Table) -> bool:
    return len(t.z_dims) > 1 and t.elbow["original"] in t.z_dims


def _smallest_sets_range(t: Table) -> bool:
    if len(t.z_dims) < 2:
        return False
    small = t.z_dims[0]
    return all(t.mean(k, small) > max(t.mean(k, z) for z in t.z_dims[1:])
               for k in t.elbow["measures"])


def _ranges(t: Table) -> str:
    parts = []
    for key, found in t.elbow["measures"].items():
        values = [t.mean(key, z) for z in t.z_dims]
        parts.append(f"{found['range']:.2f} nats on the {found['label']} (from "
                     f"{max(values):.2f} down to {min(values):.2f})")
    return and_list(parts)


@rule("elbow_range_from_smallest", _ELBOW,
       "two or more z_dims, and the smallest z_dim has the highest error on every elbow measure",
       _smallest_sets_range)
def _range_smallest(t: Table) -> str:
    return (f"Each tolerance is a share of the measure's whole range across the sweep, and the "
            f"smallest z_dim, {t.z_dims[0]}, sets that range: {_ranges(t)}; a sweep without "
            f"z_dim = {t.z_dims[0]} would have a smaller range and so a stricter rule.")


@rule("elbow_range", _ELBOW,
       "two or more z_dims, and the smallest z_dim does not have the highest error on every "
       "elbow measure", lambda t: len(t.z_dims) > 1 and not _smallest_sets_range(t))
def _range_other(t: Table) -> str:
    return (f"Each tolerance is a share of the measure's whole range across the sweep: "
            f"{_ranges(t)}.")


def _label(t: Table, key: str) -> str:
    return str(_measure(t, key)["label"])


def _original(t: Table) -> int:
    return int(t.elbow["original"])


def _everywhere(t: Table, key: str) -> str:
    pcts = and_list([tolerance(x) for x in t.elbow["tolerances"]])
    return (f"On the {_label(t, key)} the elbow is at z_dim = {_original(t)} at every tolerance "
            f"({pcts}), as the original study's \"about {_original(t)}\" says.")


def _somewhere(t: Table, key: str) -> str:
    held = [tolerance(x) for x, ok in zip(t.elbow["tolerances"], _matches(t, key),
                                           strict=True) if ok]
    return (f"On the {_label(t, key)} the elbow depends on the tolerance: {_verdicts(t, key)}; "
            f"the original study's \"about {_original(t)}\" holds at {and_list(held)} only.")


def _nowhere(t: Table, key: str) -> str:
    return (f"On the {_label(t, key)} the elbow is {_verdicts(t, key)}: at no tolerance is it "
            f"the original study's \"about {_original(t)}\".")


def _unchecked(t: Table, key: str) -> str:
    if len(t.z_dims) < 2:
        return (f"With one z_dim there is no elbow on the {_label(t, key)}, so the original "
                f"study's \"about {_original(t)}\" cannot be checked.")
    return (f"The sweep has no z_dim = {_original(t)}, so the original study's \"about "
            f"{_original(t)}\" cannot be checked on the {_label(t, key)}; its elbow is "
            f"{_verdicts(t, key)}.")


def _matches_everywhere(t: Table, key: str) -> bool:
    return _checkable(t) and all(_matches(t, key))


def _matches_somewhere(t: Table, key: str) -> bool:
    return _checkable(t) and any(_matches(t, key)) and not all(_matches(t, key))


def _matches_nowhere(t: Table, key: str) -> bool:
    return _checkable(t) and not any(_matches(t, key))


def _uncheckable(t: Table, key: str) -> bool:
    """Neither measure can be checked: ``key`` is taken only to match the other conditions."""
    return not _checkable(t)


def _rows(t: Table, key: str) -> list[dict[str, Any]]:
    return list(_measure(t, key)["robustness"])


def _holds(row: dict[str, Any]) -> str:
    low, high = row["holds_from"], row["holds_to"]
    if low is None:
        return ""
    if high is None:
        return f"from {100 * low:.2f} % up"
    return f"from {100 * low:.2f} to {100 * high:.2f} %"


def _part(row: dict[str, Any]) -> str:
    a, b = row["pair"]
    if row["margin"] is None:
        return (f"at {tolerance(row['tolerance'])}, z_dim = {row['at']} holds at every "
                "tolerance (no z_dim before it is further from the best)")
    if row["noise"] is None:
        where = "no noise was measured to compare it with"
    else:
        where = (f"{'within' if row['fragile'] else 'beyond'} twice the combined noise of "
                 f"z_dim = {a} and {b} ({MARGIN * float(row['noise']):.2f} nats)")
    return (f"at {tolerance(row['tolerance'])}, z_dim = {row['at']} (the verdict for every "
            f"tolerance {_holds(row)}) holds by {row['margin']:.2f} nats, {where}")


def _fragile(t: Table, key: str) -> str:
    weak = [tolerance(r["tolerance"]) for r in _rows(t, key) if r["fragile"]]
    return (f"On the {_label(t, key)} the verdicts are fragile at {and_list(weak)}, where the "
            "margin is inside the noise: " + "; ".join(_part(r) for r in _rows(t, key)) + ".")


def _robust(t: Table, key: str) -> str:
    return (f"On the {_label(t, key)} every verdict holds beyond its noise: "
            + "; ".join(_part(r) for r in _rows(t, key)) + ".")


def _some_fragile(t: Table, key: str) -> bool:
    return len(t.z_dims) > 1 and any(r["fragile"] for r in _rows(t, key))


def _none_fragile(t: Table, key: str) -> bool:
    return len(t.z_dims) > 1 and not any(r["fragile"] for r in _rows(t, key))


def _best_listing(t: Table, key: str) -> str:
    found = _measure(t, key)
    return ", ".join(f"z_dim = {b} at {tolerance(x)}"
                     for x, b in zip(t.elbow["tolerances"], found["best_at"], strict=True))


def _floor_text(t: Table) -> str:
    floor = float(t.elbow.get("floor", 0.0))
    return f"the BCE floor, {floor:.2f}" if floor > 0 else "0"


def _disagreements(t: Table, key: str) -> list[str]:
    found = _measure(t, key)
    return [f"{tolerance(x)} ({b} by the distance to the best, {a} by the range)"
            for x, a, b in
            zip(t.elbow["tolerances"], found["at"], found["best_at"], strict=True) if a != b]


_BEST_RULE = ("Measured instead by the distance to the best z_dim, which never looks at the "
              "worst model (the smallest z_dim whose error is within p % of the best's, p "
              "taken of the best error above {floor}), the elbow on the {label} is {listing}")


def _best_agrees(t: Table, key: str) -> str:
    return (_BEST_RULE.format(floor=_floor_text(t), label=_label(t, key),
                              listing=_best_listing(t, key))
            + ": the same as the rule above at every tolerance.")


def _best_differs(t: Table, key: str) -> str:
    return (_BEST_RULE.format(floor=_floor_text(t), label=_label(t, key),
                              listing=_best_listing(t, key))
            + f"; the two rules disagree at {and_list(_disagreements(t, key))}, so the elbow "
            "there depends on the rule.")


def _rules_agree(t: Table, key: str) -> bool:
    return len(t.z_dims) > 1 and not _disagreements(t, key)


def _rules_disagree(t: Table, key: str) -> bool:
    return len(t.z_dims) > 1 and bool(_disagreements(t, key))


# Each measure's rules: (name, condition, when, say); the functions take (table, key).
_PER_MEASURE = (
    ("as_original", "on {name}, the elbow is the original's z_dim at every tolerance",
     _matches_everywhere, _everywhere),
    ("depends", "on {name}, the elbow is the original's z_dim at some tolerances only",
     _matches_somewhere, _somewhere),
    ("differs", "on {name}, the elbow is the original's z_dim at no tolerance",
     _matches_nowhere, _nowhere),
    ("unchecked", "the sweep lacks the original's z_dim, or has one z_dim",
     _uncheckable, _unchecked),
)
_ROBUSTNESS = (
    ("fragile", "two or more z_dims, and on {name} some tolerance's verdict clears its bound by "
     "at most twice the noise of the deciding pair (or none measured)", _some_fragile, _fragile),
    ("robust", "two or more z_dims, and on {name} every tolerance's verdict clears its bound by "
     "more than twice the noise of the deciding pair", _none_fragile, _robust),
    ("best_agrees", "two or more z_dims, and on {name} the distance-to-best rule gives the same "
     "z_dim as the range rule at every tolerance", _rules_agree, _best_agrees),
    ("best_differs", "two or more z_dims, and on {name} the distance-to-best rule gives another "
     "z_dim than the range rule at some tolerance", _rules_disagree, _best_differs),
)
for _family in (_PER_MEASURE, _ROBUSTNESS):
    for _key in ("neg_elbo", "recon_bce"):
        for _suffix, _condition, _when, _say in _family:
            RULES.append(Rule(f"elbow_{_key}_{_suffix}", _ELBOW,
                              _condition.format(name=_key.replace("_", " ")),
                              partial(_when, key=_key), partial(_say, key=_key)))


def _gaps(t: Table) -> list[tuple[int, int]]:
    """(low, high) for every elbow z_dim (either rule, a reached one) whose grid step is
    coarse: the sweep cannot tell low ... high apart."""
    found: set[int] = set()
    for measure in t.elbow["measures"].values():
        found |= {a for a, r in zip(measure["at"], measure["reached"], strict=True) if r}
        found |= {b for b in measure["best_at"] if b != t.z_dims[-1]}
    out = []
    for at in sorted(found):
        gap = grid_gap(t.z_dims, at)
        if gap is not None:
            out.append(gap)
    return out


@rule("elbow_grid", _ELBOW, "some elbow lands on a z_dim more than one above the sweep's "
       "previous z_dim", lambda t: len(t.z_dims) > 1 and bool(_gaps(t)))
def _grid(t: Table) -> str:
    parts = []
    for low, high in _gaps(t):
        previous = low - 1
        finer = ",".join(str(z) for z in range(previous, high + 1))
        parts.append(f"an elbow at z_dim = {high} lies somewhere from {low} to {high}, which "
                     f"this grid cannot tell apart (it has no z_dim between {previous} and "
                     f"{high}; --z-dims with {finer} refines it)")
    return ("The sweep's grid places an elbow only on its own z_dims: " + "; ".join(parts)
            + ".")


def _seed_differences(t: Table) -> list[str]:
    out = []
    for found in t.elbow["measures"].values():
        for i, tol in enumerate(t.elbow["tolerances"]):
            own = {seed: at[i] for seed, at in found["per_seed"].items()}
            if any(v != found["at"][i] for v in own.values()):
                out.append(f"{found['label']} at {tolerance(tol)}: "
                           + ", ".join(f"{v} (seed {s})" for s, v in own.items())
                           + f" against {found['at'][i]} on the mean")
    return out


@rule("elbow_seeds_differ", _ELBOW,
       "several seeds, and some seed's own curve puts an elbow elsewhere than the mean curve",
       lambda t: t.several and bool(_seed_differences(t)))
def _seeds_differ(t: Table) -> str:
    return "The seeds' own curves do not all agree with the mean: " + \
        "; ".join(_seed_differences(t)) + "."


@rule("elbow_seeds_agree", _ELBOW,
       "several seeds, and every seed's own curve puts every elbow where the mean curve does",
       lambda t: t.several and not _seed_differences(t))
def _seeds_agree(t: Table) -> str:
    return ("Every seed's own curve puts every elbow where the mean curve does, at every "
            "tolerance and on both measures.")
