"""Rules of the elbow section: the rule's range, its verdicts against the original study."""

from __future__ import annotations

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


def _elbow_rules(key: str) -> None:
    def label(t: Table) -> str:
        return str(_measure(t, key)["label"])

    def original(t: Table) -> int:
        return int(t.elbow["original"])

    def everywhere(t: Table) -> str:
        pcts = and_list([tolerance(x) for x in t.elbow["tolerances"]])
        return (f"On the {label(t)} the elbow is at z_dim = {original(t)} at every tolerance "
                f"({pcts}), as the original study's \"about {original(t)}\" says.")

    def somewhere(t: Table) -> str:
        held = [tolerance(x) for x, ok in zip(t.elbow["tolerances"], _matches(t, key),
                                               strict=True) if ok]
        return (f"On the {label(t)} the elbow depends on the tolerance: {_verdicts(t, key)}; "
                f"the original study's \"about {original(t)}\" holds at {and_list(held)} only.")

    def nowhere(t: Table) -> str:
        return (f"On the {label(t)} the elbow is {_verdicts(t, key)}: at no tolerance is it "
                f"the original study's \"about {original(t)}\".")

    def unchecked(t: Table) -> str:
        if len(t.z_dims) < 2:
            return (f"With one z_dim there is no elbow on the {label(t)}, so the original "
                    f"study's \"about {original(t)}\" cannot be checked.")
        return (f"The sweep has no z_dim = {original(t)}, so the original study's \"about "
                f"{original(t)}\" cannot be checked on the {label(t)}; its elbow is "
                f"{_verdicts(t, key)}.")

    name = key.replace("_", " ")
    RULES.append(Rule(f"elbow_{key}_as_original", _ELBOW,
                      f"on {name}, the elbow is the original's z_dim at every tolerance",
                      lambda t: _checkable(t) and all(_matches(t, key)), everywhere))
    RULES.append(Rule(f"elbow_{key}_depends", _ELBOW,
                      f"on {name}, the elbow is the original's z_dim at some tolerances only",
                      lambda t: _checkable(t) and any(_matches(t, key))
                      and not all(_matches(t, key)), somewhere))
    RULES.append(Rule(f"elbow_{key}_differs", _ELBOW,
                      f"on {name}, the elbow is the original's z_dim at no tolerance",
                      lambda t: _checkable(t) and not any(_matches(t, key)), nowhere))
    RULES.append(Rule(f"elbow_{key}_unchecked", _ELBOW,
                      "the sweep lacks the original's z_dim, or has one z_dim",
                      lambda t: not _checkable(t), unchecked))


for _key in ("neg_elbo", "recon_bce"):
    _elbow_rules(_key)


def _robustness_rules(key: str) -> None:
    def label(t: Table) -> str:
        return str(_measure(t, key)["label"])

    def rows(t: Table) -> list[dict[str, Any]]:
        return list(_measure(t, key)["robustness"])

    def holds(row: dict[str, Any]) -> str:
        low, high = row["holds_from"], row["holds_to"]
        if low is None:
            return ""
        if high is None:
            return f"from {100 * low:.2f} % up"
        return f"from {100 * low:.2f} to {100 * high:.2f} %"

    def part(row: dict[str, Any]) -> str:
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
                f"tolerance {holds(row)}) holds by {row['margin']:.2f} nats, {where}")

    def fragile(t: Table) -> str:
        weak = [tolerance(r["tolerance"]) for r in rows(t) if r["fragile"]]
        return (f"On the {label(t)} the verdicts are fragile at {and_list(weak)}, where the "
                "margin is inside the noise: " + "; ".join(part(r) for r in rows(t)) + ".")

    def robust(t: Table) -> str:
        return (f"On the {label(t)} every verdict holds beyond its noise: "
                + "; ".join(part(r) for r in rows(t)) + ".")

    name = key.replace("_", " ")
    RULES.append(Rule(f"elbow_{key}_fragile", _ELBOW,
                      f"two or more z_dims, and on {name} some tolerance's verdict clears its "
                      "bound by at most twice the noise of the deciding pair (or none measured)",
                      lambda t: len(t.z_dims) > 1 and any(r["fragile"] for r in rows(t)),
                      fragile))
    RULES.append(Rule(f"elbow_{key}_robust", _ELBOW,
                      f"two or more z_dims, and on {name} every tolerance's verdict clears its "
                      "bound by more than twice the noise of the deciding pair",
                      lambda t: len(t.z_dims) > 1 and not any(r["fragile"] for r in rows(t)),
                      robust))

    def best_listing(t: Table) -> str:
        found = _measure(t, key)
        return ", ".join(f"z_dim = {b} at {tolerance(x)}"
                         for x, b in zip(t.elbow["tolerances"], found["best_at"], strict=True))

    def floor_text(t: Table) -> str:
        floor = float(t.elbow.get("floor", 0.0))
        return f"the BCE floor, {floor:.2f}" if floor > 0 else "0"

    def disagreements(t: Table) -> list[str]:
        found = _measure(t, key)
        return [f"{tolerance(x)} ({b} by the distance to the best, {a} by the range)"
                for x, a, b in
                zip(t.elbow["tolerances"], found["at"], found["best_at"], strict=True) if a != b]

    def best_agrees(t: Table) -> str:
        return (f"Measured instead by the distance to the best z_dim, which never looks at the "
                f"worst model (the smallest z_dim whose error is within p % of the best's, p "
                f"taken of the best error above {floor_text(t)}), the elbow on the {label(t)} "
                f"is {best_listing(t)}: the same as the rule above at every tolerance.")

    def best_differs(t: Table) -> str:
        return (f"Measured instead by the distance to the best z_dim, which never looks at the "
                f"worst model (the smallest z_dim whose error is within p % of the best's, p "
                f"taken of the best error above {floor_text(t)}), the elbow on the {label(t)} "
                f"is {best_listing(t)}; the two rules disagree at "
                f"{and_list(disagreements(t))}, so the elbow there depends on the rule.")

    RULES.append(Rule(f"elbow_{key}_best_agrees", _ELBOW,
                      f"two or more z_dims, and on {name} the distance-to-best rule gives the "
                      "same z_dim as the range rule at every tolerance",
                      lambda t: len(t.z_dims) > 1 and not disagreements(t), best_agrees))
    RULES.append(Rule(f"elbow_{key}_best_differs", _ELBOW,
                      f"two or more z_dims, and on {name} the distance-to-best rule gives "
                      "another z_dim than the range rule at some tolerance",
                      lambda t: len(t.z_dims) > 1 and bool(disagreements(t)), best_differs))


for _key in ("neg_elbo", "recon_bce"):
    _robustness_rules(_key)


def _gaps(t: Table) -> list[tuple[int, int]]:
    """(low, high) for every elbow z_dim (either rule, a reached one) whose grid step is
    coarse: the sweep cannot tell low ... high apart."""
    found: set[int] = set()
    for measure in t.elbow["measures"].values():
        found |= {a for a, r in zip(measure["at"], measure["reached"], strict=True) if r}
        found |= {b for b in measure.get("best_at", []) if b != t.z_dims[-1]}
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
