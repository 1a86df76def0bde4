"""The report's conclusions: sentences generated from the measured numbers of results.json."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from vaelab.study.elbow import ELBOW_RULE

__all__ = ["conclusions", "intervals_text"]


def _fmt_digits(digits: list[int], names: list[str]) -> str:
    return ", ".join(names[d] for d in digits) if digits else "none"


def intervals_text(intervals: list[dict[str, Any]], names: list[str]) -> str:
    """"1 on [-3.00, -1.21], 7 on [-1.21, 0.05], ..."""
    return ", ".join(f"{names[i['label']]} on [{i['start']:.2f}, {i['end']:.2f}]"
                     for i in intervals)


def conclusions(results: dict[str, Any]) -> list[str]:
    """One sentence (or two) per finding, each quoting the numbers it rests on."""
    config, runs, names = results["config"], results["runs"], results["class_names"]
    z_dims = [int(z) for z in sorted(runs, key=int)]
    run = {z: runs[str(z)] for z in z_dims}
    out: list[str] = []
    small, large = z_dims[0], z_dims[-1]

    train = config["train"]
    if train["epochs"] < 100 or train["dataset"] != "mnist":
        out.append(f"This run trained {train['epochs']} epoch(s) per z_dim on "
                   f"{train['dataset']}; the original study trained 100 epochs on full MNIST, "
                   "so the numbers below describe this shorter run.")

    bce = {z: run[z]["test"]["recon_bce"] for z in z_dims}
    at = results["elbow"]["bce"]
    rule = ELBOW_RULE.format(pct=100 * results["elbow"]["tolerance"])
    if len(z_dims) > 1 and at == large:
        out.append(f"Reconstruction error was still improving at the largest z_dim tried "
                   f"({large}: {bce[large]:.2f} nats of BCE per test image, down from "
                   f"{bce[small]:.2f} at z_dim={small}); by the rule ({rule}) the sweep did not "
                   "reach the point where it stops improving.")
    elif len(z_dims) > 1:
        out.append(f"Reconstruction error stops improving at z_dim = {at}: test BCE falls from "
                   f"{bce[small]:.2f} nats per image at z_dim={small} to {bce[at]:.2f} at "
                   f"z_dim={at}, and only to {min(bce.values()):.2f} beyond it "
                   f"(rule: {rule}).")
    mse_at = results["elbow"]["mse"]
    if mse_at != at:
        out.append(f"Measured as pixel MSE instead, the elbow falls at z_dim = {mse_at}.")

    elbo = {z: run[z]["test"]["neg_elbo"] for z in z_dims}
    best = min(elbo, key=lambda z: elbo[z])
    out.append(f"The lowest test negative ELBO is {elbo[best]:.2f} nats per image, at "
               f"z_dim = {best} (" + ", ".join(f"z_dim={z}: {elbo[z]:.2f}" for z in z_dims)
               + ").")

    kl = {z: run[z]["test"]["kl"] for z in z_dims}
    rising = all(kl[a] <= kl[b] for a, b in pairwise(z_dims))
    out.append(f"The KL term {'rises steadily' if rising else 'changes'} from {kl[small]:.2f} "
               f"nats at z_dim={small} to {kl[large]:.2f} at z_dim={large}: "
               f"{'more' if kl[large] > kl[small] else 'less'} information passes through "
               "the larger latent spaces.")

    active = {z: run[z]["active_units"] for z in z_dims}
    unused = [z for z in z_dims if active[z] < z]
    text = ", ".join(f"{active[z]} of {z}" for z in z_dims)
    if unused:
        out.append(f"Active units (Cov_x(E_q[z_u|x]) > {config['active_threshold']:g}): {text}; "
                   f"at z_dim={unused[-1]} the model leaves {unused[-1] - active[unused[-1]]} "
                   "unit(s) unused, so the extra dimensions mostly carry no information.")
    else:
        out.append(f"Every latent unit is active in every model ({text}).")

    one_d = results.get("one_d")
    if one_d:
        prior = one_d["prior range"]
        missing = [d for d in range(len(names)) if d not in prior["digits"]]
        out.append(f"Along z in [{prior['low']:.2f}, {prior['high']:.2f}] the 1-D model draws "
                   f"{len(prior['digits'])} distinct digits: "
                   f"{intervals_text(prior['intervals'], names)}; never drawn: "
                   f"{_fmt_digits(missing, names)}.")
        data = one_d["data range"]
        out.append(f"The test images' latent means span [{data['low']:.2f}, {data['high']:.2f}], "
                   f"where the decoder draws {len(data['digits'])} digits.")

    two_d = results.get("two_d")
    if two_d:
        share = two_d["area_share"]
        order = sorted(two_d["digits"], key=lambda d: -share[d])
        missing = [d for d in range(len(names)) if d not in two_d["digits"]]
        out.append(f"Over [-{two_d['limit']:g}, {two_d['limit']:g}]² the 2-D model decodes to "
                   f"{len(two_d['digits'])} of {len(names)} digits; largest areas: "
                   + ", ".join(f"{names[d]} {100 * share[d]:.0f} %" for d in order[:3])
                   + f"; absent: {_fmt_digits(missing, names)}.")

    conf = {z: run[z]["prior_confidence"] for z in z_dims}
    seen = {z: run[z]["prior_digits_seen"] for z in z_dims}
    sure = max(conf, key=lambda z: conf[z])
    unsure = min(conf, key=lambda z: conf[z])
    n = config["prior_samples"]
    out.append(f"Scored by the classifier, {n:,} prior samples per model cover "
               + ", ".join(f"{seen[z]} digits at z_dim={z}" for z in z_dims)
               + f"; the classifier is most confident about the samples of z_dim={sure} "
               f"(mean probability {conf[sure]:.3f}) and least about those of "
               f"z_dim={unsure} ({conf[unsure]:.3f}).")
    return out
