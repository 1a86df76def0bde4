"""Rules of the prior-samples section: Fréchet distance, precision and recall, the digits."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import pct

# --- Prior samples ---------------------------------------------------------------------------

_SAMPLES = "Prior samples"


@rule("fd_by_z_dim", _SAMPLES, "always", lambda t: True)
def _fd(t: Table) -> str:
    return (f"Fréchet distance between {t.prior_samples:,} decoded prior samples and the "
            f"{t.n_test:,} test images in the classifier's penultimate features (lower is "
            f"closer): {t.listing('fd')}; lowest at z_dim = {t.argmin('fd')}.")


@rule("fd_disagrees_with_elbo", _SAMPLES,
       "two or more z_dims, and the lowest mean Fréchet distance and the lowest mean negative "
       "ELBO are at different z_dims",
       lambda t: len(t.z_dims) > 1 and t.argmin("fd") != t.argmin("neg_elbo"))
def _fd_disagrees(t: Table) -> str:
    return (f"The z_dim with the lowest test negative ELBO ({t.argmin('neg_elbo')}) is not the "
            f"one whose prior samples are closest to the test set ({t.argmin('fd')}): the "
            "ELBO scores how well test images are encoded and reconstructed, the Fréchet "
            "distance how images decoded from the prior compare with them.")


@rule("fd_agrees_with_elbo", _SAMPLES,
       "two or more z_dims, and the lowest mean Fréchet distance and the lowest mean negative "
       "ELBO are at the same z_dim",
       lambda t: len(t.z_dims) > 1 and t.argmin("fd") == t.argmin("neg_elbo"))
def _fd_agrees(t: Table) -> str:
    return (f"The z_dim with the lowest test negative ELBO ({t.argmin('neg_elbo')}) also has "
            "the prior samples closest to the test set.")


@rule("precision_recall", _SAMPLES, "always", lambda t: True)
def _precision_recall(t: Table) -> str:
    return ("Precision (the share of prior samples inside the test set's feature manifold, "
            f"k = 3 neighbours): {t.listing('precision', 3)}; recall (the share of test "
            f"images inside the samples' manifold): {t.listing('recall', 3)}.")


@rule("prior_histogram", _SAMPLES, "always", lambda t: True)
def _prior_histogram(t: Table) -> str:
    return (f"The classifier names a digit for a decoded prior sample only when it gives it a "
            f"probability of at least {t.min_confidence:g}; it leaves unclear "
            + ", ".join(f"{pct(t.mean('prior_unclear', z))} at z_dim={z}" for z in t.z_dims)
            + ". The histogram below counts which digit the samples resemble; it does not "
            "measure their quality.")
