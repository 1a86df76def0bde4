"""Rules of the conclusions about the losses: the best negative ELBO and the rate, each
difference judged against the noise measured in the same study (``Table.compare``); the z_dims
are separately trained models, and the sentences say so."""

from __future__ import annotations

from itertools import pairwise

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import judged

_SECTION = "Conclusions"


def _values(t: Table, measure: str, z_dim: int) -> str:
    """" (seeds: 100.12, 100.53)" with several seeds, else ""."""
    if not t.several:
        return ""
    return " (seeds: " + ", ".join(f"{v:.2f}" for v in t.sweep[measure][z_dim].values) + ")"


def _lowest(t: Table) -> str:
    best = t.argmin("neg_elbo")
    mean = "mean " if t.several else ""
    return (f"The lowest {mean}test negative ELBO is {t.mean('neg_elbo', best):.2f} nats per "
            f"image, at z_dim = {best}{_values(t, 'neg_elbo', best)} "
            f"({t.listing('neg_elbo')})")


def _runner_up(t: Table) -> str:
    best, second = t.argmin("neg_elbo"), t.runner_up("neg_elbo")
    found = t.compare("neg_elbo", best, second)
    return (f"the next best, z_dim = {second}, a separately trained model"
            f"{_values(t, 'neg_elbo', second)}, is {found.difference:.2f} nats higher, "
            f"{judged(found)}")


def _best_separated(t: Table) -> bool:
    return len(t.z_dims) > 1 and t.compare("neg_elbo", t.argmin("neg_elbo"),
                                           t.runner_up("neg_elbo")).separated


@rule("lowest_elbo_separated", _SECTION,
       "two or more z_dims, and the best z_dim's negative ELBO is below the next best's by more "
       "than twice their combined noise", _best_separated)
def _lowest_separated(t: Table) -> str:
    return f"{_lowest(t)}; {_runner_up(t)}."


@rule("lowest_elbo_not_separated", _SECTION,
       "two or more z_dims, and the two best negative ELBOs differ by at most twice their "
       "combined noise, or no noise was measured",
       lambda t: len(t.z_dims) > 1 and not _best_separated(t))
def _lowest_not_separated(t: Table) -> str:
    return f"{_lowest(t)}; {_runner_up(t)}: these numbers do not separate the two."


@rule("lowest_elbo_single", _SECTION, "one z_dim", lambda t: len(t.z_dims) == 1)
def _lowest_single(t: Table) -> str:
    z = t.z_dims[0]
    return (f"The test negative ELBO is {t.mean('neg_elbo', z):.2f} nats per image at z_dim = "
            f"{z}, the sweep's only z_dim{_values(t, 'neg_elbo', z)}.")


def _rate_steps(t: Table) -> list[tuple[int, int, bool]]:
    """(a, b, rose beyond the noise) for each step of the sweep."""
    out = []
    for a, b in pairwise(t.z_dims):
        found = t.compare("kl", a, b)
        out.append((a, b, found.separated and found.difference > 0))
    return out


@rule("rate_rises", _SECTION,
       "two or more z_dims, and the mean KL rises by more than twice the combined noise at "
       "every step", lambda t: len(t.z_dims) > 1 and all(r for *_, r in _rate_steps(t)))
def _rate_rises(t: Table) -> str:
    small, large = t.z_dims[0], t.z_dims[-1]
    mean = "mean " if t.several else ""
    return (f"The {mean}rate (the KL term) rises at every step of the sweep, each time by more "
            f"than twice the combined noise, from {t.mean('kl', small):.2f} nats at z_dim = "
            f"{small} to {t.mean('kl', large):.2f} at z_dim = {large}. The rate is the ELBO's "
            "price for the code; it bounds the information the code carries about the image "
            "(I_q, below) from above, but is not that information.")


@rule("rate_not_rising", _SECTION,
       "two or more z_dims, and at some step the mean KL does not rise by more than twice the "
       "combined noise", lambda t: len(t.z_dims) > 1 and not all(r for *_, r in _rate_steps(t)))
def _rate_not_rising(t: Table) -> str:
    mean = "mean " if t.several else ""
    steps = []
    for a, b, rose in _rate_steps(t):
        if not rose:
            found = t.compare("kl", a, b)
            steps.append(f"from z_dim = {a} to {b} it changes by {found.difference:+.2f} nats, "
                         f"{judged(found)}")
    return (f"The {mean}rate (the KL term) does not rise beyond its noise at every step of the "
            f"sweep ({t.listing('kl')}): {'; '.join(steps)}.")
