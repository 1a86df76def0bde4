"""Rules about information: I_q(x; z) with its ceiling log N, and the rate beyond it.

The rate (the KL term) is I_q(x; z) plus the marginal KL(q(z) || p(z)) (Hoffman & Johnson
2016); only I_q is information about the image, and on N images it can never exceed log N.
"""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import and_list
from vaelab.study.noise import compare

_SECTION = "Conclusions"


def _ceiling_text(t: Table) -> str:
    return f"log N = log {t.n_test:,} = {t.ceiling:.2f} nats"


@rule("information", _SECTION, "always", lambda t: True)
def _information(t: Table) -> str:
    return (f"I_q(x; z), the information the code carries about which of the {t.n_test:,} "
            f"test images it encodes, can be at most {_ceiling_text(t)}: "
            f"{t.listing('i_q')}. The rest of the rate is the marginal KL(q(z) || p(z)), how far "
            f"the codes as a whole lie from the prior, not information: "
            f"{t.listing('marginal_kl')}.")


def _at_ceiling(t: Table) -> list[int]:
    return [z for z in t.z_dims if t.at_ceiling(z)]


@rule("information_at_ceiling", _SECTION,
       "some model's I_q lies within twice its noise of the ceiling log N",
       lambda t: bool(_at_ceiling(t)))
def _information_ceiling(t: Table) -> str:
    at = _at_ceiling(t)
    which = and_list([str(z) for z in at])
    return (f"At z_dim = {which}, I_q is at the ceiling (within twice its noise of "
            f"{_ceiling_text(t)}): more than this cannot be measured with {t.n_test:,} images, "
            "so these numbers cannot tell whether "
            + ("that model's" if len(at) == 1 else "those models'")
            + " code tells the images apart better than "
            + ("it" if len(at) == 1 else "they") + " already do.")


@rule("information_below_ceiling", _SECTION,
       "no model's I_q lies within twice its noise of the ceiling log N",
       lambda t: not _at_ceiling(t))
def _information_below(t: Table) -> str:
    top = max(t.z_dims, key=lambda z: (t.mean("i_q", z), -z))
    gap = compare(t.mean("i_q", top), t.ceiling, t.noise_of("i_q", top), 0.0)
    return (f"No model reaches the ceiling: the largest I_q, {t.mean('i_q', top):.2f} nats at "
            f"z_dim = {top}, lies {gap.difference:.2f} nats below {_ceiling_text(t)}"
            + ("." if gap.separated else ", and no noise was measured to judge that gap."))


def _over(t: Table) -> list[int]:
    return [z for z in t.z_dims if t.mean("kl", z) > t.ceiling]


@rule("rate_beyond_ceiling", _SECTION, "some model's mean KL exceeds log N",
       lambda t: bool(_over(t)))
def _rate_beyond(t: Table) -> str:
    parts = [f"at z_dim = {z}, {t.mean('kl', z):.2f} nats, at least "
             f"{t.mean('kl', z) - t.ceiling:.2f} of them beyond" for z in _over(t)]
    return (f"The rate exceeds {_ceiling_text(t)} in some models ({'; '.join(parts)}): that "
            f"part cannot be information about the {t.n_test:,} test images, so a larger rate "
            "there is not more information.")
