"""The report's generated sentences: each from a rule with a stated condition on the numbers.

A ``Rule`` has a name, the report section its sentence belongs to, its condition in words, the
condition as a function of the ``Table`` (the numbers of results.json the rules read), and the
sentence as a function of the same table. ``findings(results)`` applies every rule in order and
keeps the sentences of those whose condition holds. Rules that can contradict each other come
in groups whose conditions exclude one another (one seed / several seeds; for each elbow
measure: matches the original / depends on the tolerance / never matches / cannot be checked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

__all__ = ["IDLE_NATS", "RULES", "Finding", "Rule", "Stat", "Table", "conclusions", "findings",
           "unused_step"]

IDLE_NATS = 1.0  # KL and BCE changes below this many nats count as "almost no information"


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
    n_test: int
    active_threshold: float
    min_confidence: float
    class_names: tuple[str, ...]
    sweep: dict[str, dict[int, Stat]]  # measure -> z_dim -> across seeds
    elbow: dict[str, Any]  # results["elbow"]
    one_d: dict[str, Any] | None
    two_d: dict[str, Any] | None

    @classmethod
    def from_results(cls, results: dict[str, Any]) -> Table:
        config, sweep = results["config"], results["sweep"]
        z_dims = tuple(sorted(int(z) for z in sweep))
        measures = [k for k, v in next(iter(sweep.values())).items() if isinstance(v, dict)]
        return cls(
            z_dims=z_dims, seeds=tuple(results["seeds"]), dataset=config["train"]["dataset"],
            epochs=int(config["train"]["epochs"]), binarize=results["pixels"]["binarize"],
            bce_floor=float(results["pixels"]["bce_floor"]),
            prior_samples=int(config["prior_samples"]), n_test=int(results["n_test"]),
            active_threshold=float(config["active_threshold"]),
            min_confidence=float(config["min_confidence"]),
            class_names=tuple(results["class_names"]),
            sweep={m: {z: Stat.from_dict(sweep[str(z)][m]) for z in z_dims} for m in measures},
            elbow=results["elbow"], one_d=results.get("one_d"), two_d=results.get("two_d"))

    @property
    def several(self) -> bool:
        return len(self.seeds) > 1

    def mean(self, measure: str, z_dim: int) -> float:
        return self.sweep[measure][z_dim].mean

    def show(self, measure: str, z_dim: int, digits: int = 2) -> str:
        """"100.40", or "100.40 ± 0.31" with several seeds."""
        stat = self.sweep[measure][z_dim]
        text = f"{stat.mean:.{digits}f}"
        return text if stat.sd is None else f"{text} ± {stat.sd:.{digits}f}"

    def listing(self, measure: str, digits: int = 2) -> str:
        return ", ".join(f"z_dim={z}: {self.show(measure, z, digits)}" for z in self.z_dims)

    def argmin(self, measure: str) -> int:
        return min(self.z_dims, key=lambda z: (self.mean(measure, z), z))


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


def _rule(name: str, section: str, condition: str, when: Callable[[Table], bool]
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


# --- small helpers ------------------------------------------------------------------------

def _count(value: float) -> str:
    """An active-unit count: 16, or 16.5 for a mean over seeds."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _several(n: int, noun: str) -> str:
    """"1 digit", "3 digits"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _tolerance(t: float) -> str:
    return f"{100 * t:g} %"


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _digits(digits: Sequence[int], names: Sequence[str]) -> str:
    return ", ".join(names[d] for d in digits) if digits else "none"


def _active(t: Table, z: int) -> str:
    """"16 of 20", with the seeds' own counts when there are several."""
    stat = t.sweep["active_units"][z]
    text = f"{_count(stat.mean)} of {z}"
    if t.several:
        text += " (seeds: " + ", ".join(_count(v) for v in stat.values) + ")"
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


@_rule("settings_differ", _TRAINING, "epochs != 100 or dataset != mnist",
       lambda t: t.epochs != 100 or t.dataset != "mnist")
def _settings_differ(t: Table) -> str:
    return (f"This study trained {t.epochs} epoch(s) per run on {t.dataset}; the original study "
            "trained 100 epochs on full MNIST, so the numbers here describe this study's "
            "settings, not the original's.")


@_rule("one_seed", _TRAINING, "one seed per z_dim", lambda t: not t.several)
def _one_seed(t: Table) -> str:
    return (f"Every z_dim was trained with one seed ({t.seeds[0]}), so no number here has an "
            "error bar: a difference between two z_dims cannot be told apart from the "
            "variation between seeds (--seeds 3 measures it).")


@_rule("several_seeds", _TRAINING, "two or more seeds per z_dim", lambda t: t.several)
def _several_seeds(t: Table) -> str:
    return (f"Every z_dim was trained with {len(t.seeds)} seeds "
            f"({', '.join(map(str, t.seeds))}); tables give the mean ± the standard deviation "
            "across seeds, and the loss curves shade the band from the lowest to the highest "
            "seed.")


@_rule("lowest_elbo", _SECTION, "always", lambda t: True)
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


@_rule("elbo_gap_within_spread", _SECTION,
       "several seeds, and the two best z_dims' mean negative ELBOs differ by less than the sum "
       "of their standard deviations", _gap_within)
def _elbo_gap_within(t: Table) -> str:
    best, second, gap, _ = _two_best(t)
    sd_b, sd_s = t.sweep["neg_elbo"][best].sd, t.sweep["neg_elbo"][second].sd
    return (f"z_dim = {best} and z_dim = {second}, the two best, differ by {gap:.2f} nats, less "
            f"than the sum of their standard deviations ({sd_b:.2f} + {sd_s:.2f}): these seeds "
            "do not separate them.")


@_rule("elbo_gap_beyond_spread", _SECTION,
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


@_rule("kl_rises", _SECTION, "two or more z_dims and the mean KL rises at every step",
       lambda t: len(t.z_dims) > 1 and _kl_rises(t))
def _kl_rises_say(t: Table) -> str:
    small, large = t.z_dims[0], t.z_dims[-1]
    mean = "mean " if t.several else ""
    return (f"The {mean}KL term rises at every step of the sweep, from "
            f"{t.mean('kl', small):.2f} nats at z_dim = {small} to {t.mean('kl', large):.2f} at "
            f"z_dim = {large}: the larger latent spaces carry more information about each image.")


@_rule("kl_not_monotone", _SECTION, "two or more z_dims and the mean KL falls or stays at some "
       "step", lambda t: len(t.z_dims) > 1 and not _kl_rises(t))
def _kl_not_monotone(t: Table) -> str:
    mean = "mean " if t.several else ""
    return f"The {mean}KL term does not rise at every step of the sweep ({t.listing('kl')})."


@_rule("all_units_active", _SECTION, "every unit active in every model of every seed",
       lambda t: unused_step(t) is None)
def _all_active(t: Table) -> str:
    seeds = " and every seed" if t.several else ""
    return (f"Every latent unit is active in every model{seeds} ("
            + ", ".join(f"{z} of {z}" for z in t.z_dims) + ").")


@_rule("active_counts", _SECTION, "some model leaves a unit inactive",
       lambda t: unused_step(t) is not None)
def _active_counts(t: Table) -> str:
    return (f"Active units (Cov_x(E_q[z_u|x]) > {t.active_threshold:g}): "
            + ", ".join(_active(t, z) for z in t.z_dims) + ".")


@_rule("added_units_used", _SECTION,
       "the largest z_dim with inactive units (b) gains at least one active unit over the "
       "z_dim before it (a), its KL is higher and its reconstruction BCE lower", _step_used)
def _added_used(t: Table) -> str:
    a, b, gained, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {_count(t.mean('active_units', b))} of {b} units are active and "
            f"{_count(b - t.mean('active_units', b))} unused; still, from z_dim = {a} to {b} the "
            f"active units grow by {_count(gained)} ({_count(t.mean('active_units', a))} → "
            f"{_count(t.mean('active_units', b))}), the KL rises by {kl_rise:.2f} nats and the "
            f"reconstruction BCE falls by {bce_fall:.2f} nats: the added dimensions carry "
            "information, though not all of them are used.")


@_rule("added_units_idle", _SECTION,
       f"b (as above) gains no active unit over a, and its KL and reconstruction BCE differ "
       f"from a's by less than {IDLE_NATS:g} nat", _step_idle)
def _added_idle(t: Table) -> str:
    a, b, _, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {_count(t.mean('active_units', b))} of {b} units are active; "
            f"from z_dim = {a} to {b} no more units become active "
            f"({_count(t.mean('active_units', a))} → {_count(t.mean('active_units', b))}), the "
            f"KL changes by {kl_rise:+.2f} nats and the reconstruction BCE by {-bce_fall:+.2f} "
            "nats: the added dimensions carry almost no information.")


@_rule("added_units_mixed", _SECTION,
       "b (as above) exists with a z_dim before it, and neither of the two rules above holds",
       lambda t: _has_step(t) and not _step_used(t) and not _step_idle(t))
def _added_mixed(t: Table) -> str:
    a, b, _, kl_rise, bce_fall = _step(t)
    return (f"At z_dim = {b}, {_count(t.mean('active_units', b))} of {b} units are active; "
            f"from z_dim = {a} to {b} the active units go from "
            f"{_count(t.mean('active_units', a))} to {_count(t.mean('active_units', b))}, the "
            f"KL changes by {kl_rise:+.2f} nats and the reconstruction BCE by {-bce_fall:+.2f} "
            "nats; these numbers alone do not show whether the added dimensions are used.")


@_rule("grey_pixels", _SECTION, "the runs were trained on grey levels (binarize = none)",
       lambda t: t.binarize == "none")
def _grey_pixels(t: Table) -> str:
    best = t.argmin("recon_bce")
    bce = t.mean("recon_bce", best)
    return ("The images keep their grey levels (binarize = none), so the reconstruction BCE "
            "and the negative ELBO are not log-likelihoods: no model can bring the BCE below "
            f"the pixels' own entropy, {t.bce_floor:.2f} nats per test image (the BCE floor), "
            f"and the lowest BCE here, {bce:.2f} at z_dim = {best}, lies "
            f"{bce - t.bce_floor:.2f} nats above it.")


@_rule("binary_pixels", _SECTION, "the runs were trained on binarised pixels",
       lambda t: t.binarize != "none")
def _binary_pixels(t: Table) -> str:
    return (f"The pixels were binarised (binarize = {t.binarize}), so the negative ELBO is an "
            "upper bound on the negative log-likelihood of the binarised test images.")


# --- Prior samples ---------------------------------------------------------------------------

_SAMPLES = "Prior samples"


@_rule("fd_by_z_dim", _SAMPLES, "always", lambda t: True)
def _fd(t: Table) -> str:
    return (f"Fréchet distance between {t.prior_samples:,} decoded prior samples and the "
            f"{t.n_test:,} test images in the classifier's penultimate features (lower is "
            f"closer): {t.listing('fd')}; lowest at z_dim = {t.argmin('fd')}.")


@_rule("fd_disagrees_with_elbo", _SAMPLES,
       "two or more z_dims, and the lowest mean Fréchet distance and the lowest mean negative "
       "ELBO are at different z_dims",
       lambda t: len(t.z_dims) > 1 and t.argmin("fd") != t.argmin("neg_elbo"))
def _fd_disagrees(t: Table) -> str:
    return (f"The z_dim with the lowest test negative ELBO ({t.argmin('neg_elbo')}) is not the "
            f"one whose prior samples are closest to the test set ({t.argmin('fd')}): the "
            "ELBO scores how well test images are encoded and reconstructed, the Fréchet "
            "distance how images decoded from the prior compare with them.")


@_rule("fd_agrees_with_elbo", _SAMPLES,
       "two or more z_dims, and the lowest mean Fréchet distance and the lowest mean negative "
       "ELBO are at the same z_dim",
       lambda t: len(t.z_dims) > 1 and t.argmin("fd") == t.argmin("neg_elbo"))
def _fd_agrees(t: Table) -> str:
    return (f"The z_dim with the lowest test negative ELBO ({t.argmin('neg_elbo')}) also has "
            "the prior samples closest to the test set.")


@_rule("precision_recall", _SAMPLES, "always", lambda t: True)
def _precision_recall(t: Table) -> str:
    return ("Precision (the share of prior samples inside the test set's feature manifold, "
            f"k = 3 neighbours): {t.listing('precision', 3)}; recall (the share of test "
            f"images inside the samples' manifold): {t.listing('recall', 3)}.")


@_rule("prior_histogram", _SAMPLES, "always", lambda t: True)
def _prior_histogram(t: Table) -> str:
    return (f"The classifier names a digit for a decoded prior sample only when it gives it a "
            f"probability of at least {t.min_confidence:g}; it leaves unclear "
            + ", ".join(f"{_pct(t.mean('prior_unclear', z))} at z_dim={z}" for z in t.z_dims)
            + ". The histogram below counts which digit the samples resemble; it does not "
            "measure their quality.")


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
        pcts = _and([f"{100 * x:g}" for x in tols]) + " %"
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
    return _and(parts)


@_rule("elbow_range_from_smallest", _ELBOW,
       "two or more z_dims, and the smallest z_dim has the highest error on every elbow measure",
       _smallest_sets_range)
def _range_smallest(t: Table) -> str:
    return (f"Each tolerance is a share of the measure's whole range across the sweep, and the "
            f"smallest z_dim, {t.z_dims[0]}, sets that range: {_ranges(t)}; a sweep without "
            f"z_dim = {t.z_dims[0]} would have a smaller range and so a stricter rule.")


@_rule("elbow_range", _ELBOW,
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
        pcts = _and([_tolerance(x) for x in t.elbow["tolerances"]])
        return (f"On the {label(t)} the elbow is at z_dim = {original(t)} at every tolerance "
                f"({pcts}), as the original study's \"about {original(t)}\" says.")

    def somewhere(t: Table) -> str:
        held = [_tolerance(x) for x, ok in zip(t.elbow["tolerances"], _matches(t, key),
                                               strict=True) if ok]
        return (f"On the {label(t)} the elbow depends on the tolerance: {_verdicts(t, key)}; "
                f"the original study's \"about {original(t)}\" holds at {_and(held)} only.")

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
                out.append(f"{found['label']} at {_tolerance(tol)}: "
                           + ", ".join(f"{v} (seed {s})" for s, v in own.items())
                           + f" against {found['at'][i]} on the mean")
    return out


@_rule("elbow_seeds_differ", _ELBOW,
       "several seeds, and some seed's own curve puts an elbow elsewhere than the mean curve",
       lambda t: t.several and bool(_seed_differences(t)))
def _seeds_differ(t: Table) -> str:
    return "The seeds' own curves do not all agree with the mean: " + \
        "; ".join(_seed_differences(t)) + "."


@_rule("elbow_seeds_agree", _ELBOW,
       "several seeds, and every seed's own curve puts every elbow where the mean curve does",
       lambda t: t.several and not _seed_differences(t))
def _seeds_agree(t: Table) -> str:
    return ("Every seed's own curve puts every elbow where the mean curve does, at every "
            "tolerance and on both measures.")


# --- 1-D and 2-D latent spaces ---------------------------------------------------------------

@_rule("one_d_prior_range", "1-D latent space", "the sweep has a z_dim = 1 model",
       lambda t: t.one_d is not None)
def _one_d_prior(t: Table) -> str:
    assert t.one_d is not None
    part, names = t.one_d["prior range"], t.class_names
    missing = [d for d in range(len(names)) if d not in part["digits"]]
    return (f"Along z in [{part['low']:.2f}, {part['high']:.2f}] the 1-D model draws "
            f"{_several(len(part['digits']), 'distinct digit')} "
            f"({_digits(part['digits'], names)}); never "
            f"drawn: {_digits(missing, names)}; {_pct(part['unclear_share'])} of the line is "
            f"unclear (no digit with probability ≥ {t.one_d['min_confidence']:g}, or a digit "
            f"on fewer than {t.one_d['min_run']} neighbouring grid points).")


@_rule("one_d_data_range", "1-D latent space", "the sweep has a z_dim = 1 model",
       lambda t: t.one_d is not None)
def _one_d_data(t: Table) -> str:
    assert t.one_d is not None
    part = t.one_d["data range"]
    return (f"Over the test images' own latent range [{part['low']:.2f}, {part['high']:.2f}] it "
            f"draws {_several(len(part['digits']), 'digit')} "
            f"({_digits(part['digits'], t.class_names)}); "
            f"{_pct(part['unclear_share'])} of that stretch is unclear.")


def _limit(t: Table) -> str:
    assert t.two_d is not None
    return f"[-{t.two_d['limit']:g}, {t.two_d['limit']:g}]²"


@_rule("two_d_digits", "2-D latent space", "the sweep has a z_dim = 2 model",
       lambda t: t.two_d is not None)
def _two_d_digits(t: Table) -> str:
    assert t.two_d is not None
    share, names = t.two_d["area_share"], t.class_names
    order = sorted(t.two_d["digits"], key=lambda d: (-share[d], d))
    return (f"Over {_limit(t)} the 2-D model's decodings show {len(t.two_d['digits'])} of "
            f"{len(names)} digits; largest areas: "
            + ", ".join(f"{names[d]} {_pct(share[d])}" for d in order[:3])
            + f"; unclear: {_pct(t.two_d['unclear_share'])} of the plane.")


@_rule("two_d_beyond_data", "2-D latent space",
       "a z_dim = 2 model, and part of the grid lies outside the test set's latent range",
       lambda t: t.two_d is not None and t.two_d["beyond_share"] > 0)
def _two_d_beyond(t: Table) -> str:
    assert t.two_d is not None
    x0, x1, y0, y1 = t.two_d["latent_extent"]
    n = t.two_d["grid_size"]
    text = (f"{_pct(t.two_d['beyond_share'])} of the {n} x {n} grid over {_limit(t)} lies "
            f"outside the test set's latent range [{x0:.2f}, {x1:.2f}] x [{y0:.2f}, {y1:.2f}], "
            "where no test image's latent mean lies")
    inside, outside = t.two_d["unclear_inside"], t.two_d["unclear_outside"]
    if inside is not None and outside is not None:
        text += (f"; the classifier leaves {_pct(outside)} of the decodings outside that "
                 f"range unclear, and {_pct(inside)} of those inside it")
    return text + "."


@_rule("two_d_within_data", "2-D latent space",
       "a z_dim = 2 model, and the whole grid lies inside the test set's latent range",
       lambda t: t.two_d is not None and t.two_d["beyond_share"] == 0)
def _two_d_within(t: Table) -> str:
    assert t.two_d is not None
    return (f"The whole grid over {_limit(t)} lies inside the test set's latent range: no grid "
            "point is beyond the most extreme test image's latent mean on either axis.")
