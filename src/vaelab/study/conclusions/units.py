"""Rules of the conclusions about the latent units: how many are active, and what the
largest model with idle units does against the one before it (I_q and the BCE, each judged
against its noise)."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import count, judged

__all__ = ["unused_step"]

_SECTION = "Conclusions"


def _active(t: Table, z: int) -> str:
    """"16 of 20", with the seeds' own counts when there are several."""
    stat = t.sweep["active_units"][z]
    text = f"{count(stat.mean)} of {z}"
    if t.several:
        text += " (seeds: " + ", ".join(count(v) for v in stat.values) + ")"
    return text


def unused_step(t: Table) -> tuple[int | None, int] | None:
    """(a, b): b the largest z_dim whose mean active units fall short of b, a the z_dim before
    it in the sweep (None when b is the smallest); None when every unit is active."""
    short = [z for z in t.z_dims if t.mean("active_units", z) < z]
    if not short:
        return None
    b = short[-1]
    i = t.z_dims.index(b)
    return (t.z_dims[i - 1] if i > 0 else None), b


def _pair(t: Table) -> tuple[int, int]:
    found = unused_step(t)
    assert found is not None and found[0] is not None
    return found[0], found[1]


def _has_step(t: Table) -> bool:
    found = unused_step(t)
    return found is not None and found[0] is not None


def _both_at_ceiling(t: Table) -> bool:
    if not _has_step(t):
        return False
    a, b = _pair(t)
    return t.at_ceiling(a) and t.at_ceiling(b)


def _gains(t: Table) -> tuple[bool, bool, bool, bool]:
    """(I_q rose beyond its noise, the BCE fell beyond its noise, I_q separated, BCE
    separated) from a to b."""
    a, b = _pair(t)
    info, bce = t.compare("i_q", a, b), t.compare("recon_bce", a, b)
    return (info.separated and info.difference > 0, bce.separated and bce.difference < 0,
            info.separated, bce.separated)


def _unit_head(t: Table) -> str:
    a, b = _pair(t)
    return (f"At z_dim = {b}, {count(t.mean('active_units', b))} of {b} units are active and "
            f"{count(b - t.mean('active_units', b))} unused (z_dim = {a}: "
            f"{count(t.mean('active_units', a))} of {a})")


def _change(t: Table, measure: str, name: str) -> str:
    a, b = _pair(t)
    found = t.compare(measure, a, b)
    return f"{name} changes by {found.difference:+.2f} nats, {judged(found)}"


def _bce_verdict(t: Table) -> str:
    """What the BCE's change from a to b says, in words that fit its noise."""
    a, b = _pair(t)
    found = t.compare("recon_bce", a, b)
    if not found.separated:
        return "these numbers do not separate the two reconstructions"
    return ("the larger model reconstructs the test images better" if found.difference < 0
            else "the larger model reconstructs the test images worse")


@rule("all_units_active", _SECTION, "every unit active in every model of every seed",
       lambda t: unused_step(t) is None)
def _all_active(t: Table) -> str:
    seeds = " and every seed" if t.several else ""
    return (f"Every latent unit is active in every model{seeds} ("
            + ", ".join(f"{z} of {z}" for z in t.z_dims) + ").")


@rule("active_counts", _SECTION, "some model leaves a unit inactive",
       lambda t: unused_step(t) is not None)
def _active_counts(t: Table) -> str:
    return (f"Active units (Cov_x(E_q[z_u|x]) > {t.active_threshold:g}): "
            + ", ".join(_active(t, z) for z in t.z_dims) + ".")


@rule("added_units_at_ceiling", _SECTION,
       "the largest z_dim with inactive units (b) and the z_dim before it (a) both have I_q at "
       "the ceiling log N", _both_at_ceiling)
def _added_ceiling(t: Table) -> str:
    a, b = _pair(t)
    return (f"{_unit_head(t)}. It and the z_dim = {a} model, trained separately, both have I_q "
            f"at the ceiling ({t.mean('i_q', b):.2f} and {t.mean('i_q', a):.2f} of at most "
            f"{t.ceiling:.2f} nats), so whether the larger model's code tells the images apart "
            f"better cannot be measured with {t.n_test:,} images; its "
            f"{_change(t, 'recon_bce', 'reconstruction BCE')}: {_bce_verdict(t)}.")


@rule("added_units_used", _SECTION,
       "b and a (as above), not both at the ceiling; from a to b I_q rises and the "
       "reconstruction BCE falls, each by more than twice the combined noise",
       lambda t: _has_step(t) and not _both_at_ceiling(t) and all(_gains(t)[:2]))
def _added_used(t: Table) -> str:
    a, _ = _pair(t)
    return (f"{_unit_head(t)}; still, against the z_dim = {a} model, trained separately, it "
            "encodes more about each image and reconstructs it better: "
            f"{_change(t, 'i_q', 'I_q')}, and the "
            f"{_change(t, 'recon_bce', 'reconstruction BCE')}. Not all its units are used, "
            "though.")


@rule("added_units_not_separated", _SECTION,
       "b and a (as above), not both at the ceiling; neither I_q nor the reconstruction BCE "
       "differs by more than twice the combined noise",
       lambda t: _has_step(t) and not _both_at_ceiling(t) and not any(_gains(t)[2:]))
def _added_not_separated(t: Table) -> str:
    a, _ = _pair(t)
    return (f"{_unit_head(t)}. Against the z_dim = {a} model, trained separately, these "
            f"numbers do not separate the two: {_change(t, 'i_q', 'I_q')}, and the "
            f"{_change(t, 'recon_bce', 'reconstruction BCE')}.")


@rule("added_units_mixed", _SECTION,
       "b and a (as above), not both at the ceiling, and neither of the two rules above holds",
       lambda t: _has_step(t) and not _both_at_ceiling(t) and not all(_gains(t)[:2])
       and any(_gains(t)[2:]))
def _added_mixed(t: Table) -> str:
    a, _ = _pair(t)
    return (f"{_unit_head(t)}. Against the z_dim = {a} model, trained separately, "
            f"{_change(t, 'i_q', 'I_q')}, and the "
            f"{_change(t, 'recon_bce', 'reconstruction BCE')}: {_bce_verdict(t)}.")
