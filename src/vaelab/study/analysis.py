"""Measure every model of a study from its checkpoints: numbers to results.json, figures to PNG.

Nothing here trains. The classifier is the one saved in the study directory (none for a dataset
without labels: the measures that need it are left out). Every (z_dim, seed) run is measured
alike (``vaelab.study.measure``) and kept as one record of ``results["runs"]``; ``summarise``
gives each measure's mean, standard deviation, minimum and maximum across seeds per z_dim
(``results["sweep"]``); ``results["noise"]`` the noise every comparison is judged against
(``vaelab.study.noise``); the elbow is found on the mean curve and on each seed's own, with its
robustness. The reference rows and the classifier's abstention rates come from
``vaelab.study.references``. The pictures of single models (samples, interpolations,
reconstructions, the 1-D and 2-D maps) show the first seed's.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.data import Splits, load_splits
from vaelab.data.provenance import compare as compare_data
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import Classifier
from vaelab.pictures.plots import Legibility
from vaelab.pictures.png import save_grid
from vaelab.pixels import to_float
from vaelab.runs.atomic import atomic_write_json
from vaelab.runs.layout import RunDir
from vaelab.study import figures, latent, maps
from vaelab.study.config import StudyConfig
from vaelab.study.elbow import (
    BEST_RULE,
    ELBOW_RULE,
    ORIGINAL_ELBOW,
    best_elbow,
    elbow_margin,
    elbow_reached,
    elbows,
    grid_gap,
    tolerance_range,
)
from vaelab.study.measure import Reference, measure_run, prior_seed
from vaelab.study.noise import MARGIN, PRIOR_DRAWS, compare, noise_table
from vaelab.study.stages import Stages

__all__ = ["ELBOW_MEASURES", "FIGURES_DIR", "RESULTS", "RESULTS_FORMAT", "SUMMARISED",
           "analyze", "elbow_results", "figure_names", "rate_distortion", "spread",
           "summarise"]

log = logging.getLogger(__name__)

FIGURES_DIR = "figures"
RESULTS = "results.json"
# 3: I_q, noise, reference rows, abstention, rate-distortion, prior-weighted 2-D shares.
# 2 held one record per (z_dim, seed); 1 one run per z_dim under runs[str(z_dim)].
RESULTS_FORMAT = 3
N_RECON = 12  # validation images in the reconstruction comparison
INTERP_STEPS = 10  # images per interpolation row
# Interpolation rows: from the first test image of class a to the first of class b.
INTERP_PAIRS = ((0, 6), (1, 7), (2, 5), (3, 8), (4, 9), (7, 1), (8, 3), (9, 4))
# The measures summarised across seeds, and where each run record keeps them.
SUMMARISED: dict[str, tuple[str, ...]] = {
    "neg_elbo": ("test", "neg_elbo"), "recon_bce": ("test", "recon_bce"), "kl": ("test", "kl"),
    "mse": ("test", "mse"), "i_q": ("information", "i_q"),
    "marginal_kl": ("information", "marginal_kl"), "active_units": ("active_units",),
    "fd": ("sample_quality", "fd"), "precision": ("sample_quality", "precision"),
    "recall": ("sample_quality", "recall"), "prior_unclear": ("prior_unclear_share",),
    "train_seconds": ("train_seconds",),
}
ELBOW_MEASURES = {"neg_elbo": "test negative ELBO", "recon_bce": "test reconstruction BCE"}


def figure_names(z_dims: Sequence[int], labelled: bool = True) -> list[str]:
    """Every figure a study over ``z_dims`` writes into STUDY_DIR/figures, in report order;
    without labels the figures that need the classifier are left out."""
    names = ["loss_curves.png", "reconstructions.png", "active_units.png",
             "rate_distortion.png"]
    if labelled:
        names.append("prior_classes.png")
    for z_dim in z_dims:
        names += [f"samples_z{z_dim}.png", f"interpolations_z{z_dim}.png"]
    if 1 in z_dims and labelled:
        names.append("strip_1d.png")
    if 2 in z_dims:
        names += ["manifold_2d.png", "manifold_data_2d.png", "manifold_quantiles.png"]
        if labelled:
            names.append("digit_map_2d.png")
    names.append("elbow.png")
    return names


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value), minimum, maximum and the values."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()),
            "sd": float(array.std(ddof=1)) if len(array) > 1 else None,
            "min": float(array.min()), "max": float(array.max()),
            "values": [float(v) for v in array]}


def _value(record: dict[str, Any], key: str) -> float | None:
    value: Any = record
    for part in SUMMARISED[key]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per z_dim (keys str(z_dim)): the seeds and the spread of every SUMMARISED measure that
    every run has (a study without a classifier has no sample measures)."""
    out: dict[str, dict[str, Any]] = {}
    for z_dim in sorted({int(r["z_dim"]) for r in records}):
        chosen = sorted((r for r in records if r["z_dim"] == z_dim), key=lambda r: r["seed"])
        row: dict[str, Any] = {"z_dim": z_dim, "seeds": [r["seed"] for r in chosen]}
        for key in SUMMARISED:
            values = [_value(r, key) for r in chosen]
            if all(v is not None for v in values):
                row[key] = spread([v for v in values if v is not None])
        out[str(z_dim)] = row
    return out


def _table(records: Sequence[dict[str, Any]], key: str, z_dims: Sequence[int],
           seeds: Sequence[int]) -> np.ndarray:
    """(n_seeds, n_z_dims) values of one measure."""
    found = {(r["z_dim"], r["seed"]): _value(r, key) for r in records}
    return np.array([[found[z, s] for z in z_dims] for s in seeds], dtype=np.float64)


def _noise_of(noise: dict[str, Any], key: str, z_dim: int) -> float | None:
    entry = noise.get(key, {}).get(str(z_dim))
    return None if entry is None or entry["value"] is None else float(entry["value"])


def _robustness(z_dims: Sequence[int], mean: np.ndarray, tolerances: Sequence[float],
                noise: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Per tolerance: the range of tolerances giving the same elbow, the margin and its noise."""
    out = []
    for tolerance in tolerances:
        at = elbows(z_dims, mean.tolist(), [tolerance])[0]
        held = tolerance_range(z_dims, mean.tolist(), at)
        margin = elbow_margin(z_dims, mean.tolist(), tolerance)
        a, b = margin.pair
        row = {"tolerance": tolerance, "at": at, "holds_from": held[0] if held else None,
               "holds_to": (None if held is None or math.isinf(held[1]) else held[1]),
               "pair": [a, b], "grid_gap": grid_gap(z_dims, at)}
        if math.isinf(margin.nats):  # no comparison decides it: it holds at every tolerance
            row.update(margin=None, noise=None, fragile=False)
        else:
            judged = compare(0.0, margin.nats, _noise_of(noise, key, a),
                             _noise_of(noise, key, b))
            row.update(margin=margin.nats, noise=judged.noise, fragile=not judged.separated)
        out.append(row)
    return out


def elbow_results(records: Sequence[dict[str, Any]], z_dims: Sequence[int],
                  seeds: Sequence[int], tolerances: Sequence[float],
                  noise: dict[str, Any] | None = None, floor: float = 0.0) -> dict[str, Any]:
    """The elbow of each ELBOW_MEASURES measure at each tolerance: on the mean over seeds
    (``at``, ``reached``), on every seed's own curve (``per_seed``), how robust each verdict is
    (``robustness``) and the second rule's verdict (``best_at``: distance to the best z_dim,
    relative to ``floor``, the lowest error possible)."""
    out: dict[str, Any] = {"tolerances": list(tolerances), "original": ORIGINAL_ELBOW,
                           "rule": ELBOW_RULE, "best_rule": BEST_RULE, "floor": floor,
                           "margin_multiple": MARGIN, "measures": {}}
    for key, label in ELBOW_MEASURES.items():
        table = _table(records, key, z_dims, seeds)
        mean = table.mean(0)
        at = elbows(z_dims, mean.tolist(), tolerances)
        out["measures"][key] = {
            "label": label, "range": float(mean.max() - mean.min()), "at": at,
            "reached": [elbow_reached(z_dims, a) for a in at],
            "per_seed": {str(s): elbows(z_dims, row.tolist(), tolerances)
                         for s, row in zip(seeds, table, strict=True)},
            "robustness": _robustness(z_dims, mean, tolerances, noise or {}, key),
            "best_at": [best_elbow(z_dims, mean.tolist(), t, floor) for t in tolerances],
        }
    return out


def rate_distortion(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run as a point of the rate-distortion plane (Alemi et al. 2018): rate = the KL term,
    distortion = the reconstruction BCE, with I_q and the marginal KL beside the rate."""
    return [{"z_dim": r["z_dim"], "seed": r["seed"], "rate": r["test"]["kl"],
             "distortion": r["test"]["recon_bce"], "neg_elbo": r["test"]["neg_elbo"],
             "i_q": r["information"]["i_q"], "marginal_kl": r["information"]["marginal_kl"]}
            for r in records]


def _first_of(labels: np.ndarray | None, label: int) -> int:
    if labels is None:
        return label  # without labels: the label-th test image
    found = np.flatnonzero(labels == label)
    return int(found[0]) if len(found) else 0


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return int(width), int(height)


def _check(found: Legibility) -> dict[str, Any]:
    return {"width": found.width, "height": found.height,
            "smallest_text_px": found.smallest_text_px, "overlaps": len(found.overlaps),
            "cut_off": len(found.cut_off)}


def _reference(classifier: Classifier | None, splits: Splits, config: StudyConfig
               ) -> tuple[Reference | None, Any]:
    """The classifier's view of the test set (None without a classifier), and its outputs."""
    from vaelab.evaluation.sample_quality import RealSupport

    if classifier is None:
        return None, None
    outputs = classifier.outputs(to_float(torch.from_numpy(splits.test_images)))
    return (Reference(classifier, outputs.features,
                      RealSupport.of(outputs.features, config.pr_k)), outputs)


def analyze(config: StudyConfig, classifier: Classifier | None, device: torch.device,
            notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure each (z_dim, seed)'s best checkpoint; write the figures and results.json.

    ``classifier`` None (a dataset without labels): no sample measures, maps or references.
    """
    from vaelab.evaluation.elbo import bce_floor
    from vaelab.evaluation.sample_quality import prior_images
    from vaelab.pictures.run_figures import reconstruction_pairs

    say = notify or (lambda message: None)
    stages = Stages()
    study_dir = Path(config.out)
    fig_dir = study_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    with stages.time("data loading"):
        splits = load_splits(config.train.dataset, config.train.data_dir,
                             resize=config.train.resize)
    change = compare_data(RunDir(config.run_dir(config.z_dims[0], config.seed_list()[0]))
                     .read_provenance().get("data"), splits.provenance)
    if change is not None:  # the test scores of a held-out split would mean nothing
        if change.meaningless("test"):
            raise VaelabError(str(change.meaningless("test")))
        say(f"warning: {change.warning()}")
    if not splits.labelled:
        classifier = None
    labelled = classifier is not None
    names, noun = list(splits.class_names), splits.class_noun
    starts = [_first_of(splits.test_labels, a) for a, _ in INTERP_PAIRS]
    ends = [_first_of(splits.test_labels, b) for _, b in INTERP_PAIRS]
    seeds = config.seed_list()
    draws = PRIOR_DRAWS if len(seeds) == 1 else 1
    checks: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    recons: dict[str, np.ndarray] = {}
    kept: dict[int, tuple[torch.nn.Module, np.ndarray]] = {}  # first seed's 1-D and 2-D models
    originals = np.zeros((0, 28, 28))
    with stages.time("test-set features"):
        reference, test_outputs = _reference(classifier, splits, config)
    for z_dim in config.z_dims:
        for seed in seeds:
            say(f"measuring z_dim={z_dim}" + (f", seed {seed}" if len(seeds) > 1 else ""))
            measured = measure_run(config, z_dim, seed, splits, reference, device, draws,
                                   stages)
            records.append(measured.record)
            if seed != seeds[0]:
                continue
            # The pictures of single models are the first seed's.
            with stages.time("single-model figures"):
                model, binarize = measured.loaded.model, measured.loaded.config.binarize
                shown = (measured.samples if measured.samples is not None
                         else prior_images(model, 100, seed=prior_seed(seed, 0)))
                save_grid(fig_dir / f"samples_z{z_dim}.png", shown[:100, 0].numpy(), ncol=10)
                rows = latent.interpolate(model, splits.test_images[starts],
                                          splits.test_images[ends], INTERP_STEPS, binarize)
                save_grid(fig_dir / f"interpolations_z{z_dim}.png", rows, ncol=INTERP_STEPS)
                for name in (f"samples_z{z_dim}.png", f"interpolations_z{z_dim}.png"):
                    width, height = _png_size(fig_dir / name)
                    checks[name] = {"width": width, "height": height,
                                    "smallest_text_px": None, "overlaps": 0,
                                    "cut_off": 0}  # pictures without text
                originals, recons[f"z_dim={z_dim}"] = reconstruction_pairs(
                    model, torch.from_numpy(splits.val_images[:N_RECON]).to(device), binarize)
            if z_dim in (1, 2):
                kept[z_dim] = (model, measured.means)

    say("drawing the sweep figures")
    binarize = ", ".join(sorted({r.pop("binarize") for r in records}))
    histories: dict[str, list[list[dict[str, Any]]]] = {}
    by_run: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for record in records:
        history = record.pop("history")
        histories.setdefault(f"z_dim={record['z_dim']}", []).append(history)
        by_run[record["z_dim"], record["seed"]] = history
    floor = bce_floor(splits.test_images)
    grey = binarize == "none"
    with stages.time("noise table"):
        noise = noise_table(records, by_run)
    elbow = elbow_results(records, list(config.z_dims), seeds, config.elbow_tolerances, noise,
                          floor if grey else 0.0)
    points = rate_distortion(records)
    _sweep_figures(config, fig_dir, records, histories, originals, recons, elbow,
                   floor if grey else None, names, checks, points,
                   math.log(len(splits.test_images)), labelled, stages)

    from vaelab.models import model_registry
    from vaelab.training.fit import trains_stacked

    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "config": config.to_dict(),
        "model_summary": model_registry.get(config.train.model).summary,
        "trained_together": len(config.run_configs()) > 1 and trains_stacked(config.train),
        "labelled": labelled,
        "classifier": asdict(classifier.info) if classifier is not None else None,
        "class_names": names,
        "class_noun": noun,
        "n_test": len(splits.test_images),
        "seeds": seeds,
        "prior_draws": draws if labelled else 0,
        "pixels": {"binarize": binarize, "bce_floor": floor},
        "runs": records,
        "sweep": summarise(records),
        "noise": noise,
        "rate_distortion": {"points": points, "ceiling": math.log(len(splits.test_images)),
                            "bce_floor": floor if grey else None},
        "elbow": elbow,
    }
    if classifier is not None and reference is not None:
        say("measuring the reference rows")
        from vaelab.evaluation import probes
        from vaelab.study.references import abstention_rates, feature_check, reference_rows

        noise_images = probes.uniform_noise(max(config.prior_samples,
                                                len(splits.test_images)), seed=12)
        with stages.time("reference rows"):
            measured_rows = reference_rows(classifier, splits, reference.test_features,
                                           reference.support, config.prior_samples,
                                           noise_images)
        results["references"] = {"rows": measured_rows, "check": feature_check(measured_rows)}
        with stages.time("abstention rates"):
            results["abstention"] = abstention_rates(classifier, splits, config.min_confidence,
                                                     test_outputs, noise_images)
    if 1 in kept and classifier is not None:
        say("mapping the 1-D latent line")
        with stages.time("1-D map"):
            results["one_d"] = maps.one_d(config, *kept[1], classifier, names, noun, fig_dir,
                                          checks, _check)
    if 2 in kept:
        say("mapping the 2-D latent plane")
        with stages.time("2-D map"):
            results["two_d"] = maps.two_d(config, *kept[2], splits.test_labels, classifier,
                                          names, noun, fig_dir, checks, _check)
    results["figures"] = figure_names(config.z_dims, labelled)
    results["figure_checks"] = {name: checks[name] for name in results["figures"]}
    for stale in fig_dir.glob("*.png"):  # figures of an earlier analysis
        if stale.name not in results["figures"]:
            stale.unlink()
    results["seconds"] = stages.to_dict()
    atomic_write_json(study_dir / RESULTS, results)
    return results


def _sweep_figures(config: StudyConfig, fig_dir: Path, records: list[dict[str, Any]],
                   histories: dict[str, list[list[dict[str, Any]]]], originals: np.ndarray,
                   recons: dict[str, np.ndarray], elbow: dict[str, Any], floor: float | None,
                   names: list[str], checks: dict[str, dict[str, Any]],
                   points: list[dict[str, Any]], ceiling: float, labelled: bool,
                   stages: Stages) -> None:
    """The figures that compare the z_dims: losses, reconstructions, units, rate and
    distortion, classes, elbow."""
    with stages.time("sweep figures"):
        _comparison_figures(config, fig_dir, records, histories, originals, recons, elbow,
                            floor, names, checks, labelled)
    with stages.time("rate-distortion figure"):
        checks["rate_distortion.png"] = _check(figures.plot_rate_distortion(
            fig_dir / "rate_distortion.png", points, ceiling, floor))


def _comparison_figures(config: StudyConfig, fig_dir: Path, records: list[dict[str, Any]],
                        histories: dict[str, list[list[dict[str, Any]]]],
                        originals: np.ndarray, recons: dict[str, np.ndarray],
                        elbow: dict[str, Any], floor: float | None, names: list[str],
                        checks: dict[str, dict[str, Any]], labelled: bool) -> None:
    from vaelab.pictures.plots import plot_loss_curves

    train, seeds, z_dims = config.train, config.seed_list(), list(config.z_dims)
    band = f", mean of {len(seeds)} seeds" if len(seeds) > 1 else ""
    checks["loss_curves.png"] = _check(plot_loss_curves(
        histories, fig_dir / "loss_curves.png", title=f"{train.model} on {train.dataset}{band}"))
    checks["reconstructions.png"] = _check(
        figures.plot_reconstructions(fig_dir / "reconstructions.png", originals, recons))
    variances = {z: [np.asarray(r["unit_activity"]) for r in records if r["z_dim"] == z]
                 for z in z_dims}
    checks["active_units.png"] = _check(figures.plot_active_units(
        fig_dir / "active_units.png", variances, config.active_threshold))
    if labelled:
        shares, spreads = {}, {}
        for z_dim in z_dims:
            counts = np.array([r["prior_counts"] for r in records if r["z_dim"] == z_dim],
                              float)
            share = counts / counts.sum(1, keepdims=True).clip(min=1)
            shares[z_dim] = share.mean(0)
            spreads[z_dim] = share.std(0, ddof=1) if len(share) > 1 else None
        checks["prior_classes.png"] = _check(figures.plot_prior_classes(
            fig_dir / "prior_classes.png", z_dims, shares, spreads, names,
            config.min_confidence))
    panels = {}
    for key, label in ELBOW_MEASURES.items():
        found = elbow["measures"][key]
        panels[label] = (_table(records, key, z_dims, seeds),
                         list(zip(elbow["tolerances"], found["at"], found["reached"],
                                  strict=True)))
    checks["elbow.png"] = _check(figures.plot_elbow(fig_dir / "elbow.png", z_dims, panels,
                                                    floor=floor))
