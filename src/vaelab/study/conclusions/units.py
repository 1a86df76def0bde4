"""Rules of the training and conclusions sections: settings, seeds, losses, latent units,
pixels."""

from __future__ import annotations

from itertools import pairwise

from vaelab.study.conclusions.table import IDLE_NATS, Table, rule
from vaelab.study.conclusions.wording import count


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


def _step(t: Table) -> tuple[int, int, float, float, float]:
    """a, b, the change in active units, the KL's rise and the BCE's fall from a to b."""
    found = unused_step(t)
    assert found is not None
    a, b = found
    assert a is not None
    return (a, b, t.mean("active_units", b) - t.mean("active_units", a),
            t.mean("kl", b) - t.mean("kl", a), t.mean("recon_bce", a) - t.mean("recon_bce", b))


def _changes(kl_rise: float, bce_fall: float) -> str:
    """How the KL and the reconstruction BCE change from a to b, signed."""
    return (f"the KL changes by {kl_rise:+.2f} nats and the reconstruction BCE by "
            f"{-bce_fall:+.2f} nats")


def _has_step(t: Table) -> bool:
    found = unused_step(t)
    return found is not None and found[0] is not None


def _step_used(t: Table) -> bool:
    if not _has_step(t):
        return False
    _, _, gained, kl_rise, bce_fall = _step(t)
    return gained >= 1 and kl_rise > 0 and bce_fall > 0


def _step_idle(t: Table) -> bool:
    if not _has_step(t):
        return False
    _, _, gained, kl_rise, bce_fall = _step(t)
    return gained <= 0 and abs(kl_rise) < IDLE_NATS and abs(bce_fall) < IDLE_NATS




# --- Conclusions: the run, the losses, the latent units, the pixels ------------------------

_SECTION = "Conclusions"
_TRAINING = "Training"


@rule("settings_differ", _TRAINING, "epochs != 100 or dataset != mnist",
       lambda t: t.epochs != 100 or t.dataset != "mnist")
def _settings_differ(t: Table) -> str:
    return (f"This study trained {t.epochs} epoch(s) per run on {t.dataset}; the original study "
            "trained 100 epochs on full MNIST, so the numbers here describe this study's "
            "settings, not the original's.")


@rule("one_seed", _TRAINING, "one seed per z_dim", lambda t: not t.several)
def _one_seed(t: Table) -> str:
    return (f"Every z_dim was trained with one seed ({t.seeds[0]}), so no number here has an "
            "error bar: a difference between two z_dims cannot be told apart from the "
            "variation between seeds (--seeds 3 measures it).")


@rule("several_seeds", _TRAINING, "two or more seeds per z_dim", lambda t: t.several)
def _several_seeds(t: Table) -> str:
    return (f"Every z_dim was trained with {len(t.seeds)} seeds "
            f"({', '.join(map(str, t.seeds))}); tables give the mean ± the standard deviation "
            "across seeds, and the loss curves shade the band from the lowest to the highest "
            "seed.")


@rule("lowest_elbo", _SECTION, "always", lambda t: True)
def _lowest_elbo(t: Table) -> str:
    best = t.argmin("neg_elbo")
    mean = "mean " if t.several else ""
    return (f"The lowest {mean}test negative ELBO is {t.mean('neg_elbo', best):.2f} nats per "
            f"image, at z_dim = {best} ({t.listing('neg_elbo')}).")


def _two_best(t: Table) -> tuple[int, int, float, float]:
    ranked = sorted(t.z_dims, key=lambda z: (t.mean("neg_elbo", z), z))
    best, second = ranked[0], ranked[1]
    sds = t.sweep["neg_elbo"][best].sd or 0.0, t.sweep["neg_elbo"][second].sd or 0.0
    return best, second, t.mean("neg_elbo", second) - t.mean("neg_elbo", best), sum(sds)


def _gap_within(t: Table) -> bool:
    if not t.several or len(t.z_dims) < 2:
        return False
    *_, gap, noise = _two_best(t)
    return gap < noise


@rule("elbo_gap_within_spread", _SECTION,
       "several seeds, and the two best z_dims' mean negative ELBOs differ by less than the sum "
       "of their standard deviations", _gap_within)
def _elbo_gap_within(t: Table) -> str:
    best, second, gap, _ = _two_best(t)
    sd_b, sd_s = t.sweep["neg_elbo"][best].sd, t.sweep["neg_elbo"][second].sd
    return (f"z_dim = {best} and z_dim = {second}, the two best, differ by {gap:.2f} nats, less "
            f"than the sum of their standard deviations ({sd_b:.2f} + {sd_s:.2f}): these seeds "
            "do not separate them.")


@rule("elbo_gap_beyond_spread", _SECTION,
       "several seeds, and the two best z_dims' mean negative ELBOs differ by at least the sum "
       "of their standard deviations",
       lambda t: t.several and len(t.z_dims) > 1 and not _gap_within(t))
def _elbo_gap_beyond(t: Table) -> str:
    best, second, gap, _ = _two_best(t)
    sd_b, sd_s = t.sweep["neg_elbo"][best].sd, t.sweep["neg_elbo"][second].sd
    return (f"z_dim = {best} is ahead of the next best, z_dim = {second}, by {gap:.2f} nats, at "
            f"least the sum of their standard deviations ({sd_b:.2f} + {sd_s:.2f}).")


def _kl_rises(t: Table) -> bool:
    kl = [t.mean("kl", z) for z in t.z_dims]
    return all(a < b for a, b in pairwise(kl))


@rule("kl_rises", _SECTION, "two or more z_dims and the mean KL rises at every step",
       lambda t: len(t.z_dims) > 1 and _kl_rises(t))
def _kl_rises_say(t: Table) -> str:
    small, large = t.z_dims[0], t.z_dims[-1]
    mean = "mean " if t.several else ""
    return (f"The {mean}KL term rises at every step of the sweep, from "
            f"{t.mean('kl', small):.2f} nats at z_dim = {small} to {t.mean('kl', large):.2f} at "
            f"z_dim = {large}: the larger latent spaces carry more information about each image.")


@rule("kl_not_monotone", _SECTION, "two or more z_dims and the mean KL falls or stays at some "
       "step", lambda t: len(t.z_dims) > 1 and not _kl_rises(t))
def _kl_not_monotone(t: Table) -> str:
    mean = "mean " if t.several else ""
    return f"The {mean}KL term does not rise at every step of the sweep ({t.listing('kl')})."


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


@rule("added_units_used", _SECTION,
       "the largest z_dim with inactive units (b) gains at least one active unit over the "
       "z_dim before it (a), its KL is higher and its reconstruction BCE lower", _step_used)
def _added_used(t: Table) -> str:
    a, b, gained, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {count(t.mean('active_units', b))} of {b} units are active and "
            f"{count(b - t.mean('active_units', b))} unused; still, from z_dim = {a} to {b} the "
            f"active units grow by {count(gained)} ({count(t.mean('active_units', a))} → "
            f"{count(t.mean('active_units', b))}), the KL rises by {kl_rise:.2f} nats and the "
            f"reconstruction BCE falls by {bce_fall:.2f} nats: the added dimensions carry "
            "information, though not all of them are used.")


@rule("added_units_idle", _SECTION,
       f"b (as above) gains no active unit over a, and its KL and reconstruction BCE differ "
       f"from a's by less than {IDLE_NATS:g} nat", _step_idle)
def _added_idle(t: Table) -> str:
    a, b, _, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {count(t.mean('active_units', b))} of {b} units are active; "
            f"from z_dim = {a} to {b} no more units become active "
            f"({count(t.mean('active_units', a))} → {count(t.mean('active_units', b))}), "
            f"{_changes(kl_rise, bce_fall)}: the added dimensions carry almost no information.")


@rule("added_units_mixed", _SECTION,
       "b (as above) exists with a z_dim before it, and neither of the two rules above holds",
       lambda t: _has_step(t) and not _step_used(t) and not _step_idle(t))
def _added_mixed(t: Table) -> str:
    a, b, _, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {count(t.mean('active_units', b))} of {b} units are active; "
            f"from z_dim = {a} to {b} the active units go from "
            f"{count(t.mean('active_units', a))} to {count(t.mean('active_units', b))}, "
            f"{_changes(kl_rise, bce_fall)}; these numbers alone do not show whether the added "
            "dimensions are used.")


@rule("grey_pixels", _SECTION, "the runs were trained on grey levels (binarize = none)",
       lambda t: t.binarize == "none")
def _grey_pixels(t: Table) -> str:
    best = t.argmin("recon_bce")
    bce = t.mean("recon_bce", best)
    return ("The images keep their grey levels (binarize = none), so the reconstruction BCE "
            "and the negative ELBO are not log-likelihoods: no model can bring the BCE below "
            f"the pixels' own entropy, {t.bce_floor:.2f} nats per test image (the BCE floor), "
            f"and the lowest BCE here, {bce:.2f} at z_dim = {best}, lies "
            f"{bce - t.bce_floor:.2f} nats above it.")


@rule("binary_pixels", _SECTION, "the runs were trained on binarised pixels",
       lambda t: t.binarize != "none")
def _binary_pixels(t: Table) -> str:
    return (f"The pixels were binarised (binarize = {t.binarize}), so the negative ELBO is an "
            "upper bound on the negative log-likelihood of the binarised test images.")
