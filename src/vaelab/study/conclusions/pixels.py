"""Rules of the conclusions about the pixels: what the BCE of grey levels, of thresholded
and of binarised pixels can be compared with."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule

_SECTION = "Conclusions"


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


@rule("static_pixels", _SECTION, "the runs were trained on pixels thresholded at 0.5 "
       "(binarize = static)", lambda t: t.binarize == "static")
def _static_pixels(t: Table) -> str:
    return ("The pixels were thresholded at 0.5 (binarize = static). That is not the binarised "
            "MNIST of the likelihood literature (Larochelle & Murray 2011: one fixed Bernoulli "
            "draw per image), so these numbers must not be set beside papers' static-MNIST "
            "results; the negative ELBO bounds the negative log-likelihood of these thresholded "
            "images only.")


@rule("binary_pixels", _SECTION, "the runs were trained on pixels drawn as Bernoulli "
       "(binarize = dynamic)", lambda t: t.binarize not in ("none", "static"))
def _binary_pixels(t: Table) -> str:
    return (f"The pixels were binarised (binarize = {t.binarize}), so the negative ELBO is an "
            "upper bound on the negative log-likelihood of the binarised test images.")
