"""Rules of the training section: the settings, the seeds, how the runs were trained."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.noise import MIN_EPOCHS, epoch_window

_TRAINING = "Training"

@rule("settings_differ", _TRAINING, "epochs != 100 or dataset != mnist",
       lambda t: t.epochs != 100 or t.dataset != "mnist")
def _settings_differ(t: Table) -> str:
    return (f"This study trained {t.epochs} epoch(s) per run on {t.dataset}; the original study "
            "trained 100 epochs on full MNIST, so the numbers here describe this study's "
            "settings, not the original's.")


@rule("one_seed", _TRAINING, "one seed per z_dim", lambda t: not t.several)
def _one_seed(t: Table) -> str:
    window = epoch_window(t.epochs)
    losses = (f"the standard deviation of the last {window} epochs' validation values around "
              "their trend" if window else
              f"nothing (fewer than {MIN_EPOCHS} epochs, so differences of the losses are not "
              "judged)")
    samples = (f"; for the Fréchet distance, precision and recall, the standard deviation "
               f"across {t.prior_draws} independent draws of {t.prior_samples:,} prior samples"
               if t.prior_draws > 1 else "")
    return (f"Every z_dim was trained with one seed ({t.seeds[0]}), so the variation between "
            "seeds is not measured. Each comparison below is judged against noise measured in "
            f"this study instead: for the test losses, {losses}{samples}. A difference counts "
            "only when it is more than twice the combined noise of the two numbers.")


@rule("several_seeds", _TRAINING, "two or more seeds per z_dim", lambda t: t.several)
def _several_seeds(t: Table) -> str:
    n = len(t.seeds)
    return (f"Every z_dim was trained with {n} seeds ({', '.join(map(str, t.seeds))}), each "
            "a separately trained model; tables give the mean ± the standard deviation across "
            "seeds, and the loss curves shade the band from the lowest to the highest seed. A "
            "difference counts only when it is more than twice the combined standard deviation "
            f"of the two z_dims; with {n} seeds these deviations are rough, and such a "
            "difference is not a test of statistical significance.")


@rule("trained_together", _TRAINING, "the runs were trained together as one stacked model",
       lambda t: t.trained_together)
def _trained_together(t: Table) -> str:
    return ("The runs were trained together as one stacked model, so each z_dim's train time "
            "is the whole stack's wall time, shared by every z_dim, not that z_dim's own cost.")
