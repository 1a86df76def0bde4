"""The study report: one document built from results.json, rendered as HTML and as Markdown.

``build_document`` lays out the sections once; ``render_html`` embeds every figure as base64
(one self-contained file) at its own pixel size, and ``render_markdown`` links the same figures
by relative path, so both files say the same thing. Every sentence about the results comes from
a rule of ``vaelab.study.conclusions`` and appears in the section its rule names.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.study.conclusions import Finding, findings
from vaelab.study.elbow import elbow_reached
from vaelab.study.latent import UNCLEAR

__all__ = ["SECTIONS", "Document", "build_document", "png_size", "render_html",
           "render_markdown"]

SECTIONS = ("Method", "Training", "z_dim sweep", "Prior samples", "1-D latent space",
            "2-D latent space", "Elbow", "Conclusions")


@dataclass
class Document:
    """Blocks in reading order: (kind, payload) with kind in h1, h2, p, table, figure, list."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))

    def figures(self) -> list[str]:
        return [payload[0] for kind, payload in self.blocks if kind == "figure"]


def _num(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _spread(stat: dict[str, Any], digits: int = 2) -> str:
    """A summarised measure: "100.40", or "100.40 ± 0.31" across several seeds."""
    text = _num(stat["mean"], digits)
    return text if stat["sd"] is None else f"{text} ± {_num(stat['sd'], digits)}"


def _across(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float],
            digits: int = 2) -> str:
    """Mean ± standard deviation of a value of several run records; the value for one."""
    values = [float(get(r)) for r in runs]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return _num(mean, digits)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{_num(mean, digits)} ± {_num(sd, digits)}"


def _active(stat: dict[str, Any], z_dim: int) -> str:
    values = [round(v) for v in stat["values"]]
    if len(values) == 1:
        return f"{values[0]} / {z_dim}"
    return f"{_num(stat['mean'], 1)} / {z_dim} (" + ", ".join(map(str, values)) + ")"


def _prior_count(digit: int) -> Callable[[dict[str, Any]], float]:
    """How many of a run's prior samples the classifier called ``digit`` (last: unclear)."""
    return lambda record: float(record["prior_counts"][digit])


def _findings(doc: Document, found: list[Finding], section: str) -> None:
    sentences = [f.sentence for f in found if f.section == section]
    if sentences:
        doc.add("list", sentences)


def _elbow_cell(at: int, reached: bool) -> str:
    return str(at) if reached else f"not reached ({at})"


def build_document(results: dict[str, Any]) -> Document:
    """The report's content; every number comes from ``results``."""
    config, names = results["config"], results["class_names"]
    sweep, records, seeds = results["sweep"], results["runs"], results["seeds"]
    z_dims = sorted(int(z) for z in sweep)
    by_z = {z: [r for r in records if r["z_dim"] == z] for z in z_dims}
    several = len(seeds) > 1
    found = findings(results)
    clf = results["classifier"]
    doc = Document()
    train = config["train"]
    doc.add("h1", f"VAE latent-space study: {train['model']} network on {train['dataset']}")
    seed_text = (f"seeds {', '.join(map(str, seeds))}" if several else f"seed {seeds[0]}")
    doc.add("p", f"z_dims {', '.join(map(str, z_dims))}; {train['epochs']} epoch(s) each, batch "
            f"{train['batch_size']}, Adam lr {train['lr']:g}, {seed_text}. Every number and "
            "figure below was measured from this study directory's checkpoints"
            + (" (numbers: mean ± standard deviation across seeds)." if several else "."))

    doc.add("h2", "Method")
    doc.add("p", "A variational autoencoder (Kingma & Welling 2014): the encoder maps an image x "
            "to a diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))); the decoder "
            "maps z to Bernoulli logits of the 784 pixels. The network is vaelab's "
            f"'{config['train']['model']}' model: {results.get('model_summary', '')}.")
    doc.add("p", "Training minimises the negative ELBO per image, in nats: the reconstruction "
            "term, binary cross-entropy summed over pixels and computed from logits, plus "
            "KL(q(z|x) || N(0, I)) in closed form (Kingma & Welling 2014, Appendix B): "
            "KL = -1/2 * sum_u (1 + logvar_u - mu_u^2 - exp(logvar_u)). The sample fed to the "
            "decoder uses the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), "
            "so sigma = exp(logvar / 2) is the standard deviation, not the variance.")
    doc.add("p", f"Decoded images are labelled by a small CNN trained by vaelab on the "
            f"{clf['n_train']:,} training images of {clf['dataset']} ({clf['epochs']} epochs); "
            f"it classifies {100 * clf['test_accuracy']:.2f} % of the {clf['n_test']:,} test "
            "images correctly. It may abstain: a decoding counts as digit d only when the "
            f"classifier gives d a probability of at least {config['min_confidence']:g}; "
            "otherwise it is 'unclear' (grey in the digit maps).")

    doc.add("h2", "Training")
    doc.add("table", (["z_dim", "epochs", "best epoch", "train loss", "val loss",
                       "train time (s)"],
                      [[z, ", ".join(str(r["epochs"]) for r in by_z[z]),
                        ", ".join(str(r["best_epoch"]) for r in by_z[z]),
                        _across(by_z[z], lambda r: r["final"].get("train_loss", float("nan"))),
                        _across(by_z[z], lambda r: r["final"].get("val_loss", float("nan"))),
                        _across(by_z[z], lambda r: r["train_seconds"], 1)] for z in z_dims]))
    _findings(doc, found, "Training")
    band = ("the line is the mean over seeds, the shaded band spans the lowest to the highest "
            "seed" if several else "one seed, so no band")
    doc.add("figure", ("loss_curves.png", "Loss per epoch for every z_dim: train dashed, "
                       "validation solid; negative ELBO, reconstruction and KL terms in separate "
                       f"panels (nats per image); {band}."))

    doc.add("h2", "z_dim sweep")
    pixels = results["pixels"]
    grey = pixels["binarize"] == "none"
    doc.add("p", f"Test-set measures per image ({results['n_test']:,} images): negative ELBO, "
            "reconstruction BCE and KL in nats, pixel MSE of the decoded posterior mean, and "
            f"active units (Burda et al. 2015: Cov_x(E_q[z_u|x]) > "
            f"{config['active_threshold']:g})."
            + (f" 'BCE - floor' is the BCE above the test images' BCE floor, "
               f"{pixels['bce_floor']:.2f} nats per image: the pixels' own entropy, the lowest "
               "BCE any decoder can reach on grey levels." if grey else ""))
    headers = ["z_dim", "test neg. ELBO", "recon BCE", *(["BCE - floor"] if grey else []),
               "pixel MSE", "KL", "active units"]
    rows = []
    for z in z_dims:
        row = sweep[str(z)]
        above = {**row["recon_bce"], "mean": row["recon_bce"]["mean"] - pixels["bce_floor"]}
        rows.append([z, _spread(row["neg_elbo"]), _spread(row["recon_bce"]),
                     *([_spread(above)] if grey else []), _spread(row["mse"], 4),
                     _spread(row["kl"]), _active(row["active_units"], z)])
    doc.add("table", (headers, rows))
    if several:
        doc.add("p", "Each seed's own numbers:")
        doc.add("table", (["z_dim", "seed", "test neg. ELBO", "recon BCE", "KL",
                           "active units", "Fréchet distance"],
                          [[r["z_dim"], r["seed"], _num(r["test"]["neg_elbo"]),
                            _num(r["test"]["recon_bce"]), _num(r["test"]["kl"]),
                            f"{r['active_units']} / {r['z_dim']}",
                            _num(r["sample_quality"]["fd"])] for r in records]))
    _findings(doc, found, "z_dim sweep")
    doc.add("figure", ("reconstructions.png", "The same validation digits (top row) "
                       "reconstructed by each model (decoded posterior means"
                       + (", first seed)." if several else ").")))
    doc.add("figure", ("active_units.png", "Activity of each latent unit, sorted; units above "
                       "the dotted threshold are active"
                       + (" (one line per seed)." if several else ".")))

    doc.add("h2", "Prior samples")
    doc.add("p", f"{config['prior_samples']:,} draws z ~ N(0, I) per model, decoded to mean "
            f"images and compared with the {results['n_test']:,} test images in the "
            "classifier's penultimate features (128 units): the Fréchet distance between "
            "Gaussians fitted to the two feature sets (as FID, Heusel et al. 2017, but on "
            "these features, so comparable between the models of this study and not with "
            "published FIDs), and precision and recall with k = 3 neighbours (Kynkäänniemi "
            "et al. 2019).")
    doc.add("table", (["z_dim", "Fréchet distance", "precision", "recall", "unclear samples"],
                      [[z, _spread(sweep[str(z)]["fd"]), _spread(sweep[str(z)]["precision"], 3),
                        _spread(sweep[str(z)]["recall"], 3),
                        _spread(sweep[str(z)]["prior_unclear"], 3)] for z in z_dims]))
    _findings(doc, found, "Prior samples")
    doc.add("table", (["z_dim", *names, "unclear"],
                      [[z, *(_across(by_z[z], _prior_count(d), 0)
                             for d in range(len(names) + 1))] for z in z_dims]))
    doc.add("figure", ("prior_classes.png", "Share of decoded prior samples the classifier "
                       "calls each digit (probability at least "
                       f"{config['min_confidence']:g}), and the share it leaves unclear"
                       + ("; error bars: one standard deviation across seeds." if several
                          else ".")))
    first = " (first seed)" if several else ""
    for z in z_dims:
        doc.add("figure", (f"samples_z{z}.png", f"z_dim={z}: 100 decoded prior samples{first}."))
        doc.add("figure", (f"interpolations_z{z}.png", f"z_dim={z}: straight lines between the "
                           "posterior means of pairs of test digits, one pair per row: 0 to 6, "
                           f"1 to 7, 2 to 5, 3 to 8, 4 to 9, 7 to 1, 8 to 3, 9 to 4{first}."))

    doc.add("h2", "1-D latent space")
    one_d = results.get("one_d")
    if one_d:
        doc.add("p", "The z_dim=1 model decodes z along a line; the classifier labels each "
                f"decoding. The digit map classifies {one_d['map_points']} evenly spaced z per "
                "range; interval bounds lie midway between neighbouring points with different "
                f"labels. A digit counts as drawn only on at least {one_d['min_run']} "
                "neighbouring points with a probability of at least "
                f"{one_d['min_confidence']:g}; everything else is unclear."
                + (" The maps are of the first seed's model." if several else ""))
        doc.add("figure", ("strip_1d.png", "Decoded images along z with the classifier's digit "
                           "above each ('?': unclear), and the digit map beneath (grey: "
                           "unclear); bounds are labelled where they do not collide, and all "
                           "are listed in the table below."))
        _findings(doc, found, "1-D latent space")
        doc.add("table", (["range", "digit", "from z", "to z"],
                          [[title, "unclear" if i["label"] == UNCLEAR else names[i["label"]],
                            _num(i["start"], 3), _num(i["end"], 3)]
                           for title in ("prior range", "data range")
                           for i in one_d[title]["intervals"]]))
    else:
        doc.add("p", "This study has no z_dim=1 model; add 1 to --z-dims for this section.")

    doc.add("h2", "2-D latent space")
    two_d = results.get("two_d")
    if two_d:
        n, lim = two_d["grid_size"], f"[-{two_d['limit']:g}, {two_d['limit']:g}]²"
        q_lo, q_hi = config["quantiles"]
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
        doc.add("figure", ("digit_map_2d.png", f"Left: the digit the classifier sees in the "
                           f"decoding at each of {two_d['map_points']} x {two_d['map_points']} "
                           f"points of {lim} (grey: unclear). Right: the test images' latent "
                           "means, coloured by their true digit. Both panels share their axes; "
                           "the dashed box is the test set's latent range."))
        _findings(doc, found, "2-D latent space")
    else:
        doc.add("p", "This study has no z_dim=2 model; add 2 to --z-dims for this section.")

    doc.add("h2", "Elbow")
    elbow = results["elbow"]
    tolerances = elbow["tolerances"]
    doc.add("p", "Rule: the elbow is " + elbow["rule"].format(pct="p")
            + ", for each tolerance p below; 'not reached (z)' means the error still fell by "
            "more than that at the sweep's last step, to its largest z_dim z. The original study "
            f"put the point where reconstruction stops improving at about z_dim = "
            f"{elbow['original']}.")
    elbow_rows = []
    for found_m in elbow["measures"].values():
        elbow_rows.append([found_m["label"] + (", mean of seeds" if several else ""),
                           *(_elbow_cell(a, r) for a, r in zip(found_m["at"], found_m["reached"],
                                                                 strict=True))])
        if several:
            for seed, at in found_m["per_seed"].items():
                elbow_rows.append([f"{found_m['label']}, seed {seed}",
                                   *(_elbow_cell(a, elbow_reached(z_dims, a)) for a in at)])
    doc.add("table", (["measure", *(f"{100 * t:g} %" for t in tolerances)], elbow_rows))
    _findings(doc, found, "Elbow")
    doc.add("figure", ("elbow.png", "Test negative ELBO and reconstruction BCE against z_dim, "
                       "with the elbow of each tolerance"
                       + (" and, dotted, the BCE floor" if grey else "")
                       + ("; grey dots: single seeds, error bars: one standard deviation."
                          if several else ".")))

    doc.add("h2", "Conclusions")
    _findings(doc, found, "Conclusions")
    return doc


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
figure{margin:1.2em 0;overflow-x:auto}img{max-width:none;display:block}
figcaption{font-size:.9em;color:#555}"""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of PNG bytes, from the IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def render_html(doc: Document, figures_dir: Path) -> str:
    """A self-contained page: every figure inlined as a base64 PNG, shown at its pixel size."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(doc.blocks[0][1])}</title>",
             '<link rel="icon" href="data:,">', f"<style>{_CSS}</style></head><body>"]
    for kind, payload in doc.blocks:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{html.escape(payload)}</{kind}>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in payload)
                         + "</ul>")
        elif kind == "table":
            headers, rows = payload
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                           + "</tr>" for row in rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            name, caption = payload
            raw = (figures_dir / name).read_bytes()
            width, height = png_size(raw)
            data = base64.b64encode(raw).decode("ascii")
            parts.append(f'<figure id="{html.escape(name)}"><img alt="{html.escape(caption)}" '
                         f'width="{width}" height="{height}" '
                         f'src="data:image/png;base64,{data}"><figcaption>'
                         f"{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def render_markdown(doc: Document, figures_prefix: str = "figures") -> str:
    """The same document for GitHub: figures linked relative to the report."""
    lines: list[str] = []
    for kind, payload in doc.blocks:
        if kind == "h1":
            lines += [f"# {payload}", ""]
        elif kind == "h2":
            lines += [f"## {payload}", ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "list":
            lines += [f"- {x}" for x in payload] + [""]
        elif kind == "table":
            headers, rows = payload
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "|".join("---:" for _ in headers) + "|")
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
            lines.append("")
        elif kind == "figure":
            name, caption = payload
            lines += [f"![{caption}]({figures_prefix}/{name})", "", f"*{caption}*", ""]
    return "\n".join(lines)
