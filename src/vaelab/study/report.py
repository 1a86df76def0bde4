"""The study report: one document built from results.json, rendered as HTML and as Markdown.

``build_document`` lays out the sections once; ``render_html`` embeds every figure as base64
(one self-contained file) and ``render_markdown`` links the same figures by relative path, so
both files say the same thing.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.study.conclusions import conclusions, intervals_text
from vaelab.study.elbow import ELBOW_RULE

__all__ = ["SECTIONS", "Document", "build_document", "render_html", "render_markdown"]

SECTIONS = ("Method", "Training", "z_dim sweep", "1-D latent space", "2-D latent space",
            "Reconstruction error", "Conclusions")


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


def build_document(results: dict[str, Any]) -> Document:
    """The report's content; every number comes from ``results``."""
    config, runs, names = results["config"], results["runs"], results["class_names"]
    z_dims = sorted(int(z) for z in runs)
    clf = results["classifier"]
    doc = Document()
    train = config["train"]
    doc.add("h1", f"VAE latent-space study: {train['model']} network on {train['dataset']}")
    doc.add("p", f"z_dims {', '.join(map(str, z_dims))}; {train['epochs']} epoch(s) each, batch "
            f"{train['batch_size']}, Adam lr {train['lr']:g}, seed {train['seed']}. Every "
            "number and figure below was measured from this study directory's checkpoints.")

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
            "images correctly.")

    doc.add("h2", "Training")
    doc.add("table", (["z_dim", "epochs", "best epoch", "train loss", "val loss",
                       "train time (s)"],
                      [[z, runs[str(z)]["epochs"], runs[str(z)]["best_epoch"],
                        _num(runs[str(z)]["final"].get("train_loss", float("nan"))),
                        _num(runs[str(z)]["final"].get("val_loss", float("nan"))),
                        _num(runs[str(z)]["train_seconds"], 1)] for z in z_dims]))
    doc.add("figure", ("loss_curves.png", "Loss per epoch for every z_dim: train dashed, "
                       "validation solid; negative ELBO, reconstruction and KL terms in separate "
                       "panels (nats per image)."))

    doc.add("h2", "z_dim sweep")
    doc.add("p", f"Test-set measures per image ({results['n_test']:,} images): negative ELBO, "
            "reconstruction BCE and KL in nats, pixel MSE of the decoded posterior mean, and "
            f"active units (Burda et al. 2015: Cov_x(E_q[z_u|x]) > "
            f"{config['active_threshold']:g}).")
    doc.add("table", (["z_dim", "test neg. ELBO", "recon BCE", "pixel MSE", "KL",
                       "active units"],
                      [[z, _num(runs[str(z)]["test"]["neg_elbo"]),
                        _num(runs[str(z)]["test"]["recon_bce"]),
                        _num(runs[str(z)]["test"]["mse"], 4), _num(runs[str(z)]["test"]["kl"]),
                        f"{runs[str(z)]['active_units']} / {z}"] for z in z_dims]))
    doc.add("figure", ("reconstructions.png", "The same validation digits (top row) "
                       "reconstructed by each model (decoded posterior means)."))
    doc.add("figure", ("active_units.png", "Activity of each latent unit, sorted; units above "
                       "the dotted threshold are active."))
    doc.add("p", f"Generation quality: {config['prior_samples']:,} draws z ~ N(0, I) per model, "
            "decoded and classified.")
    doc.add("table", (["z_dim", *names, "digits seen", "mean confidence"],
                      [[z, *runs[str(z)]["prior_counts"], runs[str(z)]["prior_digits_seen"],
                        _num(runs[str(z)]["prior_confidence"], 3)] for z in z_dims]))
    doc.add("figure", ("prior_classes.png", "Share of each digit among decoded prior samples."))
    for z in z_dims:
        doc.add("figure", (f"samples_z{z}.png", f"z_dim={z}: 100 decoded prior samples."))
        doc.add("figure", (f"interpolations_z{z}.png", f"z_dim={z}: straight lines between the "
                           "posterior means of pairs of test digits (one pair per row)."))

    doc.add("h2", "1-D latent space")
    one_d = results.get("one_d")
    if one_d:
        doc.add("p", "The z_dim=1 model decodes z along a line; the classifier labels each "
                f"decoding. The digit map classifies {config['map_points']} evenly spaced z per "
                "range; interval bounds lie midway between neighbouring points with different "
                "labels.")
        doc.add("figure", ("strip_1d.png", "Decoded images along z with the classifier's "
                           "digit above each, and the digit map beneath with interval bounds."))
        for title, part in one_d.items():
            doc.add("p", f"Digit map over the {title} [{part['low']:.2f}, {part['high']:.2f}]: "
                    f"{intervals_text(part['intervals'], names)}.")
    else:
        doc.add("p", "This study has no z_dim=1 model; add 1 to --z-dims for this section.")

    doc.add("h2", "2-D latent space")
    two_d = results.get("two_d")
    if two_d:
        doc.add("figure", ("manifold_2d.png", f"The z_dim=2 decoder over a "
                           f"{two_d['grid_size']} x {two_d['grid_size']} grid on "
                           f"[-{two_d['limit']:g}, {two_d['limit']:g}]²."))
        q_lo, q_hi = config["quantiles"]
        doc.add("figure", ("manifold_quantiles.png", f"The same decoder at the prior's "
                           f"quantiles {q_lo:g}–{q_hi:g} on each axis."))
        doc.add("figure", ("scatter_2d.png", "Posterior means of the test images, coloured by "
                           "their true digit."))
        doc.add("figure", ("digit_map_2d.png", f"The digit the classifier sees at each of "
                           f"{two_d['map_points']} x {two_d['map_points']} points (paler: less "
                           f"confident; mean confidence {two_d['mean_confidence']:.3f})."))
    else:
        doc.add("p", "This study has no z_dim=2 model; add 2 to --z-dims for this section.")

    doc.add("h2", "Reconstruction error")
    rule = ELBOW_RULE.format(pct=100 * results["elbow"]["tolerance"])
    doc.add("p", f"Elbow rule: {rule}. By test BCE the elbow is z_dim = "
            f"{results['elbow']['bce']}; by pixel MSE it is z_dim = {results['elbow']['mse']}.")
    doc.add("figure", ("recon_error.png", "Test reconstruction error against z_dim, the elbow "
                       "marked."))

    doc.add("h2", "Conclusions")
    doc.add("list", conclusions(results))
    return doc


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
figure{margin:1.2em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}"""


def render_html(doc: Document, figures_dir: Path) -> str:
    """A self-contained page: every figure inlined as a base64 PNG."""
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
            data = base64.b64encode((figures_dir / name).read_bytes()).decode("ascii")
            parts.append(f'<figure id="{html.escape(name)}"><img alt="{html.escape(caption)}" '
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
