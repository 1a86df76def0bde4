"""Rules of the 1-D and 2-D latent-space sections. Each sentence names the grid it comes from;
shares of the plane are weighted by the prior's mass or by the test set's latent means, never by
area."""

from __future__ import annotations

from vaelab.study.conclusions.table import Table, rule
from vaelab.study.conclusions.wording import digit_names, pct, plural, several

# --- 1-D and 2-D latent spaces ---------------------------------------------------------------

@rule("one_d_prior_range", "1-D latent space", "the sweep has a z_dim = 1 model, and a "
       "classifier", lambda t: t.one_d is not None)
def _one_d_prior(t: Table) -> str:
    assert t.one_d is not None
    part, names, noun = t.one_d["prior range"], t.class_names, t.class_noun
    missing = [d for d in range(len(names)) if d not in part["digits"]]
    return (f"Along z in [{part['low']:.2f}, {part['high']:.2f}] ({t.one_d['map_points']} "
            f"points) the 1-D model draws {several(len(part['digits']), f'distinct {noun}')} "
            f"({digit_names(part['digits'], names)}); never "
            f"drawn: {digit_names(missing, names)}; {pct(part['unclear_share'])} of the line is "
            f"unclear (refused, no {noun} with probability ≥ "
            f"{t.one_d['min_confidence']:g}, or a {noun} on fewer than {t.one_d['min_run']} "
            "neighbouring points).")


@rule("one_d_data_range", "1-D latent space", "the sweep has a z_dim = 1 model, and a "
       "classifier", lambda t: t.one_d is not None)
def _one_d_data(t: Table) -> str:
    assert t.one_d is not None
    part = t.one_d["data range"]
    return (f"Over the test images' own latent range [{part['low']:.2f}, {part['high']:.2f}] it "
            f"draws {several(len(part['digits']), t.class_noun)} "
            f"({digit_names(part['digits'], t.class_names)}); "
            f"{pct(part['unclear_share'])} of that stretch is unclear.")


def _has_map(t: Table) -> bool:
    return t.two_d is not None and "prior_share" in t.two_d


def _limit(t: Table) -> str:
    assert t.two_d is not None
    return f"[-{t.two_d['limit']:g}, {t.two_d['limit']:g}]²"


def _map(t: Table) -> str:
    assert t.two_d is not None
    m = t.two_d["map_points"]
    return f"the {m} x {m} class map over {_limit(t)}"


def _top(t: Table, shares: list[float]) -> str:
    order = sorted(range(len(shares)), key=lambda d: (-shares[d], d))
    return ", ".join(f"{t.class_names[d]} ({pct(shares[d])})" for d in order[:3]
                     if shares[d] > 0)


@rule("two_d_by_prior", "2-D latent space", "a z_dim = 2 model, and a classifier", _has_map)
def _two_d_prior(t: Table) -> str:
    assert t.two_d is not None
    two = t.two_d
    return (f"On {_map(t)} (a {t.class_noun} counts as drawn where it covers a connected region "
            f"of at least {two['min_region']} points), the 2-D model's decodings show "
            f"{len(two['digits'])} of {len(t.class_names)} {plural(t.class_noun)}. Weighted by the "
            f"prior's mass, the largest shares are {_top(t, two['prior_share']) or 'none'}; "
            f"unclear: {pct(two['prior_unclear'])}.")


@rule("two_d_by_data", "2-D latent space", "a z_dim = 2 model, and a classifier", _has_map)
def _two_d_data(t: Table) -> str:
    assert t.two_d is not None
    two = t.two_d
    return (f"Weighted instead by where the {t.n_test:,} test images' latent means fall on that "
            f"map, the largest shares are {_top(t, two['data_share']) or 'none'}; unclear: "
            f"{pct(two['data_unclear'])}.")


def _box(t: Table) -> str:
    assert t.two_d is not None
    x0, x1, y0, y1 = t.two_d["latent_extent"]
    return f"[{x0:.2f}, {x1:.2f}] x [{y0:.2f}, {y1:.2f}]"


@rule("two_d_beyond_data", "2-D latent space",
       "a z_dim = 2 model, a classifier, and part of the class map lies outside the test set's "
       "latent range", lambda t: _has_map(t) and t.two_d is not None
       and t.two_d["beyond_share"] > 0)
def _two_d_beyond(t: Table) -> str:
    assert t.two_d is not None
    two = t.two_d
    text = (f"{pct(two['beyond_share'])} of the points of {_map(t)} lie outside the test set's "
            f"latent range {_box(t)}, where no test image's latent mean lies; that part of the "
            f"plane holds {pct(two['beyond_prior_mass'])} of the prior's mass")
    inside, outside = two["unclear_inside"], two["unclear_outside"]
    if inside is not None and outside is not None:
        text += (f"; the classifier leaves {pct(outside)} of the decodings outside that range "
                 f"unclear, and {pct(inside)} of those inside it")
    return text + "."


@rule("two_d_within_data", "2-D latent space",
       "a z_dim = 2 model, a classifier, and the whole class map lies inside the test set's "
       "latent range", lambda t: _has_map(t) and t.two_d is not None
       and t.two_d["beyond_share"] == 0)
def _two_d_within(t: Table) -> str:
    return (f"The whole of {_map(t)} lies inside the test set's latent range {_box(t)}: no grid "
            "point is beyond the most extreme test image's latent mean on either axis.")


@rule("two_d_extent", "2-D latent space", "a z_dim = 2 model, and no classifier",
       lambda t: t.two_d is not None and not _has_map(t))
def _two_d_extent(t: Table) -> str:
    assert t.two_d is not None
    n = t.two_d["grid_size"]
    return (f"The test images' latent means span {_box(t)} (dashed on the {n} x {n} manifold "
            f"over {_limit(t)}); outside that box lies {pct(t.two_d['beyond_prior_mass'])} of "
            "the prior's mass.")
