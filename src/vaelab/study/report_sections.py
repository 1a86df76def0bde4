"""The sections of the study report, each laid out from results.json into a ``Document``.

Static prose here describes the method and the measures; every sentence about the results comes
from a rule of ``vaelab.study.conclusions`` (``Context.findings``) and lands in its section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaelab.study.conclusions import Finding
from vaelab.study.conclusions.wording import pct
from vaelab.study.elbow import elbow_reached
from vaelab.study.latent import UNCLEAR
from vaelab.study.references import ABSTENTION_NAMES, REFERENCE_NAMES

if TYPE_CHECKING:
    from vaelab.study.report import Document

__all__ = ["SECTION_BUILDERS", "Context"]


@dataclass
class Context:
    """What every section reads."""

    results: dict[str, Any]
    found: list[Finding]

    @property
    def config(self) -> dict[str, Any]:
        return self.results["config"]  # type: ignore[no-any-return]

    @property
    def z_dims(self) -> list[int]:
        return sorted(int(z) for z in self.results["sweep"])

    @property
    def several(self) -> bool:
        return len(self.results["seeds"]) > 1

    @property
    def labelled(self) -> bool:
        return bool(self.results.get("labelled", True)) and "references" in self.results

    @property
    def noun(self) -> str:
        return str(self.results.get("class_noun", "digit"))

    def by_z(self, z: int) -> list[dict[str, Any]]:
        return [r for r in self.results["runs"] if r["z_dim"] == z]

    def sentences(self, doc: Document, section: str) -> None:
        chosen = [f.sentence for f in self.found if f.section == section]
        if chosen:
            doc.add("list", chosen)


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def spread_text(stat: dict[str, Any], digits: int = 2) -> str:
    """A summarised measure: "100.40", or "100.40 ± 0.31" across several seeds."""
    text = num(stat["mean"], digits)
    return text if stat["sd"] is None else f"{text} ± {num(stat['sd'], digits)}"


def share_text(stat: dict[str, Any]) -> str:
    """A summarised share as a percentage: "14.6 %", or "14.6 % ± 0.8 %" across seeds."""
    text = pct(stat["mean"])
    return text if stat["sd"] is None else f"{text} ± {pct(stat['sd'])}"


def _across(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float],
            digits: int = 2) -> str:
    """Mean ± standard deviation of a value of several run records; the value for one."""
    values = [float(get(r)) for r in runs]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return num(mean, digits)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{num(mean, digits)} ± {num(sd, digits)}"


def _active(stat: dict[str, Any], z_dim: int) -> str:
    values = [round(v) for v in stat["values"]]
    if len(values) == 1:
        return f"{values[0]} / {z_dim}"
    return f"{num(stat['mean'], 1)} / {z_dim} (" + ", ".join(map(str, values)) + ")"


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


# --- Method ----------------------------------------------------------------------------------

def method(doc: Document, ctx: Context) -> None:
    config, results = ctx.config, ctx.results
    doc.add("p", "A variational autoencoder (Kingma & Welling 2014): the encoder maps an image x "
            "to a diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))); the decoder "
            "maps z to Bernoulli logits of the 784 pixels. The network is vaelab's "
            f"'{config['train']['model']}' model: {results.get('model_summary', '')}.")
    doc.add("p", "Training minimises the negative ELBO per image, in nats: the reconstruction "
            "term, binary cross-entropy summed over pixels and computed from logits, plus "
            "KL(q(z|x) || N(0, I)) in closed form (Kingma & Welling 2014, Appendix B): "
            "KL = -1/2 * sum_u (1 + logvar_u - mu_u^2 - exp(logvar_u)). The sample fed to the "
            "decoder uses the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), "
            "so sigma = exp(logvar / 2) is the standard deviation, not the variance. The KL "
            "term is the rate; averaged over the test images it is I_q(x; z), the information "
            "the code carries about which image it encodes, plus KL(q(z) || p(z)) of the "
            "aggregate posterior q(z), the average of all test posteriors (Hoffman & Johnson "
            "2016); I_q is measured with that exact mixture and can never exceed log N on N "
            "images.")
    clf = results.get("classifier")
    if clf is None:
        doc.add("p", "This dataset has no labels, so no classifier was trained: the measures "
                "of decoded images by class are left out.")
        ctx.sentences(doc, "Method")
        return
    outputs = (f"one output per {ctx.noun} and one for 'none of these', which learns from "
               "blends of two training images of different classes and from noise (the real "
               "images blurred and dimmed at random as those are, so that only content tells "
               "them apart)" if clf.get("reject") else
               f"one output per {ctx.noun} (an older classifier, with no 'none of these' "
               "output)")
    doc.add("p", f"Decoded images are labelled by a small CNN that vaelab trains on the "
            f"{clf['n_train']:,} training images of {clf['dataset']} ({clf['epochs']} epochs): "
            f"{outputs}. Its most probable {ctx.noun} is right for "
            f"{100 * clf['test_accuracy']:.2f} % of the {clf['n_test']:,} test images. It "
            f"abstains: a decoding counts as {ctx.noun} d only when the classifier does not "
            f"refuse it and gives d a probability of at least {config['min_confidence']:g}; "
            "otherwise it is 'unclear' (grey in the maps). How often it refuses images whose "
            "answer is known (± one standard error):")
    abstention = results.get("abstention")
    if abstention:
        rates = abstention["rates"]
        doc.add("table", (["images", "refused"],
                          [[ABSTENTION_NAMES[k], f"{_pct(rates[k]['refused'])} ± "
                            f"{_pct(rates[k]['se'])}"] for k in ABSTENTION_NAMES if k in rates]))
    ctx.sentences(doc, "Method")


# --- Training --------------------------------------------------------------------------------

def training(doc: Document, ctx: Context) -> None:
    shared = ", shared" if ctx.results.get("trained_together") else ""
    doc.add("p", "From each run's metrics.jsonl (the epoch records written while training), "
            "not from the checkpoints:")
    doc.add("table", (["z_dim", "epochs", "best epoch", "train loss", "val loss",
                       f"train time (s){shared}"],
                      [[z, ", ".join(str(r["epochs"]) for r in ctx.by_z(z)),
                        ", ".join(str(r["best_epoch"]) for r in ctx.by_z(z)),
                        _across(ctx.by_z(z), lambda r: r["final"].get("train_loss",
                                                                      float("nan"))),
                        _across(ctx.by_z(z), lambda r: r["final"].get("val_loss", float("nan"))),
                        _across(ctx.by_z(z), lambda r: r["train_seconds"], 1)]
                       for z in ctx.z_dims]))
    ctx.sentences(doc, "Training")
    band = ("the line is the mean over seeds, the shaded band spans the lowest to the highest "
            "seed" if ctx.several else "one seed, so no band")
    doc.add("figure", ("loss_curves.png", "Loss per epoch for every z_dim: train dashed, "
                       "validation solid; negative ELBO, reconstruction and KL terms in separate "
                       f"panels (nats per image); {band}."))


# --- z_dim sweep -----------------------------------------------------------------------------

_NOISE_MEASURES = {"neg_elbo": "neg. ELBO", "recon_bce": "recon BCE", "kl": "KL", "i_q": "I_q",
                   "fd": "Fréchet distance", "precision": "precision", "recall": "recall"}


def _noise_table(doc: Document, ctx: Context) -> None:
    noise = ctx.results.get("noise", {})
    first = ctx.results["sweep"][str(ctx.z_dims[0])]
    shown = [m for m in _NOISE_MEASURES if m in noise and m in first]
    if not shown:
        return
    doc.add("p", "The noise each comparison is judged against, measured in this study (its "
            "source in the last row); a difference counts when it is more than twice the "
            "combined noise of the two numbers:")
    digits = {"precision": 3, "recall": 3}
    sources = []
    for m in shown:
        found = sorted({noise[m][str(z)]["source"] for z in ctx.z_dims})
        sources.append("; ".join(found))
    doc.add("table", (["z_dim", *(_NOISE_MEASURES[m] for m in shown)],
                      [*([z, *(num(noise[m][str(z)]["value"], digits.get(m, 2)) for m in shown)]
                         for z in ctx.z_dims), ["source", *sources]]))


def sweep(doc: Document, ctx: Context) -> None:
    results, config = ctx.results, ctx.config
    pixels = results["pixels"]
    grey = pixels["binarize"] == "none"
    ceiling = results["rate_distortion"]["ceiling"]
    doc.add("p", f"Test-set measures per image ({results['n_test']:,} images): negative ELBO, "
            "reconstruction BCE and KL (the rate) in nats, pixel MSE of the decoded posterior "
            f"mean, I_q(x; z) (at most log N = {ceiling:.2f} nats) and the marginal KL, and "
            f"active units (Burda et al. 2015: Cov_x(E_q[z_u|x]) > "
            f"{config['active_threshold']:g})."
            + (f" 'BCE - floor' is the BCE above the test images' BCE floor, "
               f"{pixels['bce_floor']:.2f} nats per image: the pixels' own entropy, the lowest "
               "BCE any decoder can reach on grey levels." if grey else ""))
    headers = ["z_dim", "test neg. ELBO", "recon BCE", *(["BCE - floor"] if grey else []),
               "pixel MSE", "KL", "I_q", "marginal KL", "active units"]
    rows = []
    for z in ctx.z_dims:
        row = results["sweep"][str(z)]
        above = {**row["recon_bce"], "mean": row["recon_bce"]["mean"] - pixels["bce_floor"]}
        rows.append([z, spread_text(row["neg_elbo"]), spread_text(row["recon_bce"]),
                     *([spread_text(above)] if grey else []), spread_text(row["mse"], 4),
                     spread_text(row["kl"]), spread_text(row["i_q"]),
                     spread_text(row["marginal_kl"]), _active(row["active_units"], z)])
    doc.add("table", (headers, rows))
    if ctx.several:
        doc.add("p", "Each seed's own numbers:")
        doc.add("table", (["z_dim", "seed", "test neg. ELBO", "recon BCE", "KL", "I_q",
                           "active units", *(["Fréchet distance"] if ctx.labelled else [])],
                          [[r["z_dim"], r["seed"], num(r["test"]["neg_elbo"]),
                            num(r["test"]["recon_bce"]), num(r["test"]["kl"]),
                            num(r["information"]["i_q"]), f"{r['active_units']} / {r['z_dim']}",
                            *([num(r["sample_quality"]["fd"])] if ctx.labelled else [])]
                           for r in results["runs"]]))
    _noise_table(doc, ctx)
    ctx.sentences(doc, "z_dim sweep")
    first = ", first seed" if ctx.several else ""
    doc.add("figure", ("reconstructions.png", "The same validation images (top row) "
                       f"reconstructed by each model (decoded posterior means{first})."))
    doc.add("figure", ("active_units.png", "Activity of each latent unit, sorted; units above "
                       "the dotted threshold are active"
                       + (" (one line per seed)." if ctx.several else ".")))
    doc.add("figure", ("rate_distortion.png", "Rate (the KL term, filled) against distortion "
                       "(the reconstruction BCE) for every model"
                       + (" and seed" if ctx.several else "") + " (Alemi et al. 2018); hollow: "
                       "I_q at the same BCE, so the gap between the two is the marginal KL; "
                       "dashed: equal negative ELBO; dotted: log N, the most I_q can measure"
                       + (", and the BCE floor." if grey else ".")))


# --- Prior samples ---------------------------------------------------------------------------

def _pairs_text(ctx: Context) -> str:
    from vaelab.study.analysis import INTERP_PAIRS

    names = ctx.results["class_names"]
    if not ctx.labelled or not names:
        return "pairs of test images, one pair per row"
    return (f"pairs of test images, one pair per row, the first test image of each {ctx.noun}: "
            + ", ".join(f"{names[a]} to {names[b]}" for a, b in INTERP_PAIRS))


def samples(doc: Document, ctx: Context) -> None:
    results, config = ctx.results, ctx.config
    first = " (first seed)" if ctx.several else ""
    if ctx.labelled:
        k = config.get("pr_k", 3)
        draws = results.get("prior_draws", 1)
        noise_text = (f" Each one-seed model is measured on {draws} independent prior draws; "
                      "the table shows the first, and the draws' spread is the noise its "
                      "comparisons are judged against." if draws > 1 else "")
        doc.add("p", f"{config['prior_samples']:,} draws z ~ N(0, I) per model, decoded to mean "
                f"images and compared with the {results['n_test']:,} test images in the "
                "classifier's penultimate features (128 units): the Fréchet distance between "
                "Gaussians fitted to the two feature sets (as FID, Heusel et al. 2017, but on "
                "these features, so comparable between the models of this study and not with "
                f"published FIDs), and precision and recall with k = {k} neighbours "
                f"(Kynkäänniemi et al. 2019).{noise_text}")
        sweep_rows = results["sweep"]
        doc.add("table", (["z_dim", "Fréchet distance", "precision", "recall", "unclear samples"],
                          [[z, spread_text(sweep_rows[str(z)]["fd"]),
                            spread_text(sweep_rows[str(z)]["precision"], 3),
                            spread_text(sweep_rows[str(z)]["recall"], 3),
                            share_text(sweep_rows[str(z)]["prior_unclear"])]
                           for z in ctx.z_dims]))
        rows = results["references"]["rows"]
        doc.add("p", "The same measures, the same way, on images that are not samples of any "
                "model, each against the test set (the ceiling first, then the floors):")
        doc.add("table", (["reference", "images", "Fréchet distance", "precision", "recall"],
                          [[REFERENCE_NAMES[kind], f"{row['fd_samples']:,}", num(row["fd"]),
                            num(row["precision"], 3), num(row["recall"], 3)]
                           for kind, row in rows.items()]))
    ctx.sentences(doc, "Prior samples")
    if ctx.labelled:
        names = results["class_names"]
        doc.add("table", (["z_dim", *names, "unclear"],
                          [[z, *(_across(ctx.by_z(z), _prior_count(d), 0)
                                 for d in range(len(names) + 1))] for z in ctx.z_dims]))
        doc.add("figure", ("prior_classes.png", "Share of decoded prior samples the classifier "
                           f"calls each {ctx.noun} (not refused, probability at least "
                           f"{config['min_confidence']:g}), and the share it leaves unclear"
                           + ("; error bars: one standard deviation across seeds."
                              if ctx.several else ".")))
    for z in ctx.z_dims:
        doc.add("figure", (f"samples_z{z}.png", f"z_dim={z}: 100 decoded prior samples{first}."))
        doc.add("figure", (f"interpolations_z{z}.png", f"z_dim={z}: straight lines between the "
                           f"posterior means of {_pairs_text(ctx)}{first}."))


def _prior_count(label: int) -> Callable[[dict[str, Any]], float]:
    """How many of a run's prior samples the classifier called ``label`` (last: unclear)."""
    return lambda record: float(record["prior_counts"][label])


# --- 1-D and 2-D latent spaces ---------------------------------------------------------------

def one_d(doc: Document, ctx: Context) -> None:
    results = ctx.results
    found = results.get("one_d")
    if not found:
        doc.add("p", "This study has no z_dim=1 model; add 1 to --z-dims for this section."
                if 1 not in ctx.z_dims else "Without a classifier there is no class map of the "
                "line; the decodings along it are among the prior samples above.")
        return
    names = results["class_names"]
    doc.add("p", "The z_dim=1 model decodes z along a line; the classifier labels each "
            f"decoding. The {ctx.noun} map classifies {found['map_points']} evenly spaced z "
            "per range; interval bounds lie midway between neighbouring points with different "
            f"labels. A {ctx.noun} counts as drawn only on at least {found['min_run']} "
            "neighbouring points, not refused and with a probability of at least "
            f"{found['min_confidence']:g}; everything else is unclear."
            + (" The maps are of the first seed's model." if ctx.several else ""))
    doc.add("figure", ("strip_1d.png", f"Decoded images along z with the classifier's {ctx.noun} "
                       f"above each ('?': unclear), and the {ctx.noun} map beneath (grey: "
                       "unclear); bounds are labelled where they do not collide, and all "
                       "are listed in the table below."))
    ctx.sentences(doc, "1-D latent space")
    doc.add("table", (["range", ctx.noun, "from z", "to z"],
                      [[title, "unclear" if i["label"] == UNCLEAR else names[i["label"]],
                        num(i["start"], 3), num(i["end"], 3)]
                       for title in ("prior range", "data range")
                       for i in found[title]["intervals"]]))


def two_d(doc: Document, ctx: Context) -> None:
    found = ctx.results.get("two_d")
    if not found:
        doc.add("p", "This study has no z_dim=2 model; add 2 to --z-dims for this section.")
        return
    n, lim = found["grid_size"], f"[-{found['limit']:g}, {found['limit']:g}]²"
    q_lo, q_hi = ctx.config["quantiles"]
    first = " (first seed)" if ctx.several else ""
    doc.add("p", f"Three {n} x {n} grids of decodings of the z_dim=2 model{first}: over "
            f"{lim}, the original study's range; over the test set's latent range (the "
            "smallest box holding every test image's latent mean); and at the prior's "
            f"quantiles {q_lo:g} to {q_hi:g} on each axis, where equal steps hold equal "
            "prior probability.")
    doc.add("figure", ("manifold_2d.png", f"The decoder over a {n} x {n} grid on {lim}; "
                       "the dashed box is the test set's latent range."))
    doc.add("figure", ("manifold_data_2d.png", f"The decoder over a {n} x {n} grid on the "
                       "test set's latent range."))
    doc.add("figure", ("manifold_quantiles.png", f"The decoder at the prior's quantiles "
                       f"{q_lo:g} to {q_hi:g} on each axis (the z of each tick beneath it)."))
    if "map_points" in found:
        m = found["map_points"]
        doc.add("figure", ("digit_map_2d.png", f"Left: the {ctx.noun} the classifier sees in "
                           f"the decoding at each of {m} x {m} points of {lim} (grey: unclear, "
                           f"or a region of fewer than {found['min_region']} points). Right: "
                           f"the test images' latent means, coloured by their true {ctx.noun}. "
                           "Both panels share their axes; the dashed box is the test set's "
                           "latent range."))
    ctx.sentences(doc, "2-D latent space")


# --- Elbow and conclusions -------------------------------------------------------------------

def _elbow_cell(at: int, reached: bool) -> str:
    return str(at) if reached else f"not reached ({at})"


def elbow(doc: Document, ctx: Context) -> None:
    found, z_dims = ctx.results["elbow"], ctx.z_dims
    tolerances = found["tolerances"]
    grey = ctx.results["pixels"]["binarize"] == "none"
    doc.add("p", "Rule: the elbow is " + found["rule"].format(pct="p")
            + ", for each tolerance p below; 'not reached (z)' means the error still fell by "
            "more than that at the sweep's last step, to its largest z_dim z. The original study "
            f"put the point where reconstruction stops improving at about z_dim = "
            f"{found['original']}. A second rule does not depend on the worst model: "
            + found.get("best_rule", "").format(pct="p") + ".")
    rows = []
    for measure in found["measures"].values():
        rows.append([measure["label"] + (", mean of seeds" if ctx.several else ""),
                     *(_elbow_cell(a, r) for a, r in zip(measure["at"], measure["reached"],
                                                         strict=True))])
        if "best_at" in measure:
            rows.append([f"{measure['label']}, distance to the best",
                         *(str(b) for b in measure["best_at"])])
        if ctx.several:
            for seed, at in measure["per_seed"].items():
                rows.append([f"{measure['label']}, seed {seed}",
                             *(_elbow_cell(a, elbow_reached(z_dims, a)) for a in at)])
    doc.add("table", (["measure", *(f"{100 * t:g} %" for t in tolerances)], rows))
    robust = [(m["label"], r) for m in found["measures"].values()
              for r in m.get("robustness", [])]
    if robust:
        doc.add("p", "How far each verdict is from changing: the margin by which the deciding "
                "comparison clears its bound, beside the combined noise of the two z_dims that "
                "decide it (fragile when the margin is within twice that noise):")
        doc.add("table", (["measure", "tolerance", "elbow", "same verdict for tolerances",
                           "margin (nats)", "noise (nats)", "verdict"],
                          [[label, f"{100 * r['tolerance']:g} %", r["at"], _holds(r),
                            num(r["margin"]), num(r["noise"]),
                            "fragile" if r["fragile"] else "robust"] for label, r in robust]))
    ctx.sentences(doc, "Elbow")
    doc.add("figure", ("elbow.png", "Test negative ELBO and reconstruction BCE against z_dim, "
                       "with the elbow of each tolerance"
                       + (" and, dotted, the BCE floor" if grey else "")
                       + ("; grey dots: single seeds, error bars: one standard deviation."
                          if ctx.several else ".")))


def _holds(row: dict[str, Any]) -> str:
    low, high = row["holds_from"], row["holds_to"]
    if low is None:
        return "–"
    return f"{100 * low:.2f} % and up" if high is None else f"{100 * low:.2f} to {100 * high:.2f} %"


def conclusions(doc: Document, ctx: Context) -> None:
    ctx.sentences(doc, "Conclusions")


SECTION_BUILDERS: dict[str, Callable[[Document, Context], None]] = {
    "Method": method, "Training": training, "z_dim sweep": sweep, "Prior samples": samples,
    "1-D latent space": one_d, "2-D latent space": two_d, "Elbow": elbow,
    "Conclusions": conclusions,
}
