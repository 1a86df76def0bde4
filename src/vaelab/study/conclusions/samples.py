"""Rules of the prior-samples section and the Method's classifier: Fréchet distance, precision
and recall beside their reference rows, the classes of the samples, the abstention rates."""

from __future__ import annotations

from functools import partial
from typing import Any

from vaelab.study.conclusions.table import RULES, Rule, Table, rule
from vaelab.study.conclusions.wording import and_list, judged, pct
from vaelab.study.noise import compare

_SAMPLES = "Prior samples"
_METHOD = "Method"
_FLOOR_NAMES = {"noise": "uniform noise", "shuffled": "pixel-shuffled images",
                "blends": "blends of two images"}


def _labelled(t: Table) -> bool:
    return t.labelled and t.has("fd")


def _rows(t: Table) -> dict[str, Any]:
    assert t.references is not None
    return t.references["rows"]  # type: ignore[no-any-return]


def _ordered(t: Table, measure: str) -> bool:
    return (t.references is not None
            and bool(t.references["check"][measure]["ordered"]))


def _floors(t: Table, measure: str, digits: int) -> str:
    rows = _rows(t)
    return and_list([f"{_FLOOR_NAMES[k]} {rows[k][measure]:.{digits}f}"
                     for k in _FLOOR_NAMES if k in rows])


# --- Method: the classifier's abstention -----------------------------------------------------

def _refuses_far_more(t: Table) -> bool:
    """Blends and noise each refused more often than clean images, beyond twice the combined
    standard error of the two shares."""
    if t.abstention is None:
        return False
    rates = t.abstention["rates"]
    clean = rates["clean"]
    return all(compare(clean["refused"], rates[k]["refused"], clean["se"], rates[k]["se"])
               .separated and rates[k]["refused"] > clean["refused"]
               for k in ("blends", "noise") if k in rates)


def _rates(t: Table) -> str:
    assert t.abstention is not None
    rates = t.abstention["rates"]
    names = {"clean": "clean test images", "blends": "blends of two test images",
             "blurred": "blurred test images", "noise": "uniform noise",
             "shuffled": "pixel-shuffled test images"}
    return and_list([f"{pct(rates[k]['refused'])} of {names[k]}" for k in names if k in rates])


@rule("abstains_where_it_should", _METHOD,
       "a classifier, and it refuses blends and noise more often than clean test images, each "
       "by more than twice the combined standard error", _refuses_far_more)
def _abstains(t: Table) -> str:
    return (f"Measured on this study's test set, the classifier refuses {_rates(t)}: blends "
            "and noise more often than clean images, each by more than twice the combined "
            "standard error of the two shares.")


@rule("abstains_too_little", _METHOD,
       "a classifier, and it does not refuse blends and noise more often than clean images by "
       "more than twice the combined standard error",
       lambda t: t.abstention is not None and not _refuses_far_more(t))
def _abstains_little(t: Table) -> str:
    return (f"Measured on this study's test set, the classifier refuses {_rates(t)}: it does "
            "not refuse blends and noise clearly more often than clean images, so the share "
            "it calls unclear says little about how clear a decoding is.")


# --- Prior samples ---------------------------------------------------------------------------

@rule("no_classifier", _SAMPLES, "the dataset has no labels, so there is no classifier",
       lambda t: not t.labelled)
def _no_classifier(t: Table) -> str:
    return (f"{t.dataset} has no labels, so no classifier could be trained on it: the Fréchet "
            "distance, precision and recall of prior samples, the classes they resemble and "
            "the class maps of the 1-D and 2-D latent spaces are left out.")


@rule("fd_by_z_dim", _SAMPLES, "a classifier", _labelled)
def _fd(t: Table) -> str:
    rows = _rows(t) if t.references is not None else {}
    scale = (f"; for scale, {rows['real']['fd_samples']:,} real images of the training file "
             f"give {rows['real']['fd']:.2f}, and {_floors(t, 'fd', 2)}"
             if "real" in rows else "")
    return (f"Fréchet distance between {t.prior_samples:,} decoded prior samples and the "
            f"{t.n_test:,} test images in the classifier's penultimate features (lower is "
            f"closer): {t.listing('fd')}{scale}.")


def _fd_best(t: Table) -> tuple[int, int, Any]:
    best, second = t.argmin("fd"), t.runner_up("fd")
    return best, second, t.compare("fd", best, second)


def _fd_best_separated(t: Table) -> bool:
    return _labelled(t) and len(t.z_dims) > 1 and _fd_best(t)[2].separated


@rule("fd_best_separated", _SAMPLES,
       "a classifier, two or more z_dims, and the lowest Fréchet distance is below the next "
       "by more than twice their combined noise", _fd_best_separated)
def _fd_separated(t: Table) -> str:
    best, second, found = _fd_best(t)
    return (f"The lowest Fréchet distance, {t.mean('fd', best):.2f} at z_dim = {best}, is "
            f"below the next, {t.mean('fd', second):.2f} at z_dim = {second}, by "
            f"{found.difference:.2f}, {judged(found, '')}.")


@rule("fd_best_not_separated", _SAMPLES,
       "a classifier, two or more z_dims, and the two lowest Fréchet distances differ by at "
       "most twice their combined noise",
       lambda t: _labelled(t) and len(t.z_dims) > 1 and not _fd_best_separated(t))
def _fd_not_separated(t: Table) -> str:
    best, second, found = _fd_best(t)
    return (f"The lowest Fréchet distance, {t.mean('fd', best):.2f} at z_dim = {best}, and the "
            f"next, {t.mean('fd', second):.2f} at z_dim = {second}, differ by "
            f"{found.difference:.2f}, {judged(found, '')}: these numbers do not separate them.")


def _elbo_fd(t: Table) -> tuple[int, int, Any]:
    by_elbo, by_fd = t.argmin("neg_elbo"), t.argmin("fd")
    return by_elbo, by_fd, t.compare("fd", by_fd, by_elbo)


_NOT_SAMPLES = ("The negative ELBO is the reconstruction BCE of test images plus the rate (the "
                "KL term); neither term scores decoded prior samples, which the Fréchet "
                "distance does, so the two need not have the same best z_dim.")


def _disagree(t: Table) -> bool:
    return _labelled(t) and len(t.z_dims) > 1 and t.argmin("fd") != t.argmin("neg_elbo")


@rule("fd_elbo_same", _SAMPLES, "a classifier, two or more z_dims, and the lowest mean Fréchet "
       "distance and the lowest mean negative ELBO are at the same z_dim",
       lambda t: _labelled(t) and len(t.z_dims) > 1 and not _disagree(t))
def _fd_same(t: Table) -> str:
    return (f"The same z_dim, {t.argmin('fd')}, has the lowest Fréchet distance and the lowest "
            "test negative ELBO.")


@rule("fd_elbo_differ", _SAMPLES,
       "a classifier, the lowest Fréchet distance and the lowest negative ELBO are at different "
       "z_dims, and their Fréchet distances differ by more than twice the combined noise",
       lambda t: _disagree(t) and _elbo_fd(t)[2].separated)
def _fd_differ(t: Table) -> str:
    by_elbo, by_fd, found = _elbo_fd(t)
    return (f"The lowest test negative ELBO is at z_dim = {by_elbo}, the lowest Fréchet "
            f"distance at z_dim = {by_fd}: the Fréchet distance of z_dim = {by_elbo} is higher "
            f"by {found.difference:.2f}, {judged(found, '')}. {_NOT_SAMPLES}")


@rule("fd_elbo_not_separated", _SAMPLES,
       "a classifier, the lowest Fréchet distance and the lowest negative ELBO are at different "
       "z_dims, and their Fréchet distances differ by at most twice the combined noise",
       lambda t: _disagree(t) and not _elbo_fd(t)[2].separated)
def _fd_unseparated(t: Table) -> str:
    by_elbo, by_fd, found = _elbo_fd(t)
    return (f"The lowest test negative ELBO is at z_dim = {by_elbo} and the lowest Fréchet "
            f"distance at z_dim = {by_fd}, but their Fréchet distances differ by "
            f"{found.difference:.2f}, {judged(found, '')}: on the Fréchet distance these "
            "numbers do not separate the two.")


_SHARE_OF = {"precision": "the share of prior samples inside the test set's feature manifold",
             "recall": "the share of test images inside the samples' feature manifold"}


def _valid(t: Table, measure: str) -> str:
    real = _rows(t)["real"][measure]
    return (f"{measure.capitalize()} ({_SHARE_OF[measure]}, k = {t.pr_k} neighbours): "
            f"{t.listing(measure, 3)}; real images of the training file give {real:.3f}, "
            f"and {_floors(t, measure, 3)}.")


def _left_out(t: Table, measure: str) -> str:
    rows, check = _rows(t), t.references["check"][measure]  # type: ignore[index]
    failing = and_list([f"{_FLOOR_NAMES[k]} ({rows[k][measure]:.3f})"
                        for k in check["failing"]])
    verb = "gets" if len(check["failing"]) == 1 else "get"
    return (f"{measure.capitalize()} is left out of these conclusions: in the classifier's "
            f"features {failing} {verb} a {measure} within twice the combined standard "
            f"error of real images' {rows['real'][measure]:.3f}, or higher, so {measure} "
            f"does not tell real images from them here ({t.listing(measure, 3)}).")


def _beats_floors(t: Table, measure: str) -> bool:
    return _labelled(t) and _ordered(t, measure)


def _misses_floors(t: Table, measure: str) -> bool:
    return _labelled(t) and t.references is not None and not _ordered(t, measure)


for _measure in ("precision", "recall"):
    RULES.append(Rule(f"{_measure}_valid", _SAMPLES,
                      f"a classifier, and real images beat every floor on {_measure} by more "
                      "than twice the combined standard error",
                      partial(_beats_floors, measure=_measure), partial(_valid, measure=_measure)))
    RULES.append(Rule(f"{_measure}_left_out", _SAMPLES,
                      f"a classifier, and some floor comes within twice the combined standard "
                      f"error of real images on {_measure}, or above",
                      partial(_misses_floors, measure=_measure),
                      partial(_left_out, measure=_measure)))


@rule("prior_histogram", _SAMPLES, "a classifier", _labelled)
def _prior_histogram(t: Table) -> str:
    return (f"The classifier names a {t.class_noun} for a decoded prior sample only when it "
            f"does not refuse it and gives it a probability of at least {t.min_confidence:g}; "
            "it leaves unclear "
            + ", ".join(f"{pct(t.mean('prior_unclear', z))} at z_dim={z}" for z in t.z_dims)
            + f". The histogram below counts which {t.class_noun} the samples resemble; it does "
            "not measure their quality.")
