"""Rules of the elbow section: the rule's range, its verdicts against the original study."""

from __future__ import annotations

from typing import Any

from vaelab.study.conclusions.table import RULES, Rule, Table, rule
from vaelab.study.conclusions.wording import and_list, tolerance

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
