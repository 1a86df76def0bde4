"""Rules of the 1-D and 2-D latent-space sections."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import digit_names, pct, several

# --- 1-D and 2-D latent spaces ---------------------------------------------------------------

@rule("one_d_prior_range", "1-D latent space", "the sweep has a z_dim = 1 model",
       lambda t: t.one_d is not None)
def _one_d_prior(t: Table) -> str:
    assert t.one_d is not None
    part, names = t.one_d["prior range"], t.class_names
    missing = [d for d in range(len(names)) if d not in part["digits"]]
    return (f"Along z in [{part['low']:.2f}, {part['high']:.2f}] the 1-D model draws "
            f"{several(len(part['digits']), 'distinct digit')} "
            f"({digit_names(part['digits'], names)}); never "
            f"drawn: {digit_names(missing, names)}; {pct(part['unclear_share'])} of the line is "
            f"unclear (no digit with probability ≥ {t.one_d['min_confidence']:g}, or a digit "
            f"on fewer than {t.one_d['min_run']} neighbouring grid points).")


@rule("one_d_data_range", "1-D latent space", "the sweep has a z_dim = 1 model",
       lambda t: t.one_d is not None)
def _one_d_data(t: Table) -> str:
    assert t.one_d is not None
    part = t.one_d["data range"]
    return (f"Over the test images' own latent range [{part['low']:.2f}, {part['high']:.2f}] it "
            f"draws {several(len(part['digits']), 'digit')} "
            f"({digit_names(part['digits'], t.class_names)}); "
            f"{pct(part['unclear_share'])} of that stretch is unclear.")


def _limit(t: Table) -> str:
    assert t.two_d is not None
    return f"[-{t.two_d['limit']:g}, {t.two_d['limit']:g}]²"


@rule("two_d_digits", "2-D latent space", "the sweep has a z_dim = 2 model",
       lambda t: t.two_d is not None)
def _two_d_digits(t: Table) -> str:
    assert t.two_d is not None
    share, names = t.two_d["area_share"], t.class_names
    order = sorted(t.two_d["digits"], key=lambda d: (-share[d], d))
    return (f"Over {_limit(t)} the 2-D model's decodings show {len(t.two_d['digits'])} of "
            f"{len(names)} digits; largest areas: "
            + ", ".join(f"{names[d]} {pct(share[d])}" for d in order[:3])
            + f"; unclear: {pct(t.two_d['unclear_share'])} of the plane.")


@rule("two_d_beyond_data", "2-D latent space",
       "a z_dim = 2 model, and part of the grid lies outside the test set's latent range",
       lambda t: t.two_d is not None and t.two_d["beyond_share"] > 0)
def _two_d_beyond(t: Table) -> str:
    assert t.two_d is not None
    x0, x1, y0, y1 = t.two_d["latent_extent"]
    n = t.two_d["grid_size"]
    text = (f"{pct(t.two_d['beyond_share'])} of the {n} x {n} grid over {_limit(t)} lies "
            f"outside the test set's latent range [{x0:.2f}, {x1:.2f}] x [{y0:.2f}, {y1:.2f}], "
            "where no test image's latent mean lies")
    inside, outside = t.two_d["unclear_inside"], t.two_d["unclear_outside"]
    if inside is not None and outside is not None:
        text += (f"; the classifier leaves {pct(outside)} of the decodings outside that "
                 f"range unclear, and {pct(inside)} of those inside it")
    return text + "."


@rule("two_d_within_data", "2-D latent space",
       "a z_dim = 2 model, and the whole grid lies inside the test set's latent range",
       lambda t: t.two_d is not None and t.two_d["beyond_share"] == 0)
def _two_d_within(t: Table) -> str:
    assert t.two_d is not None
    return (f"The whole grid over {_limit(t)} lies inside the test set's latent range: no grid "
            "point is beyond the most extreme test image's latent mean on either axis.")
