"""Measure every model of a study from its checkpoints: numbers to results.json, figures to PNG.

Nothing here trains. The classifier is the one saved in the study directory. Every (z_dim,
seed) run is measured alike and kept as one record of ``results["runs"]``; ``summarise`` gives
each measure's mean, standard deviation, minimum and maximum across seeds per z_dim
(``results["sweep"]``), and the elbow is found on the mean curve and on each seed's own. The
pictures of single models (samples, interpolations, reconstructions, the 1-D and 2-D maps) show
the first seed's.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.data import Splits, load_splits
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import Classifier
from vaelab.pictures.plots import Legibility
from vaelab.pictures.png import save_grid
from vaelab.pixels import to_float
from vaelab.runs.atomic import atomic_write_json
from vaelab.runs.layout import RunDir
from vaelab.runs.rebuild import LoadedRun, load_run
from vaelab.study import figures, latent
from vaelab.study.config import StudyConfig
from vaelab.study.elbow import ELBOW_RULE, ORIGINAL_ELBOW, elbow_reached, elbows

__all__ = ["ELBOW_MEASURES", "FIGURES_DIR", "RESULTS", "RESULTS_FORMAT", "SUMMARISED",
           "analyze", "elbow_results", "figure_names", "spread", "summarise"]

log = logging.getLogger(__name__)

FIGURES_DIR = "figures"
RESULTS = "results.json"
RESULTS_FORMAT = 2  # format 1 held one run per z_dim under runs[str(z_dim)]
N_RECON = 12  # validation digits in the reconstruction comparison
INTERP_STEPS = 10  # images per interpolation row
# Interpolation rows: from the first test image of digit a to the first of digit b.
INTERP_PAIRS = ((0, 6), (1, 7), (2, 5), (3, 8), (4, 9), (7, 1), (8, 3), (9, 4))
MAP_2D_POINTS = 121  # grid points per axis of the 2-D digit map (odd: z = 0 is on it)
MIN_RUN = 2  # neighbouring grid points a digit needs on the 1-D line to count as drawn
PR_K = 3  # neighbour rank of the precision/recall balls (Kynkäänniemi et al. 2019)
# The measures summarised across seeds, and where each run record keeps them.
SUMMARISED: dict[str, tuple[str, ...]] = {
    "neg_elbo": ("test", "neg_elbo"), "recon_bce": ("test", "recon_bce"), "kl": ("test", "kl"),
    "mse": ("test", "mse"), "active_units": ("active_units",),
    "fd": ("sample_quality", "fd"), "precision": ("sample_quality", "precision"),
    "recall": ("sample_quality", "recall"), "prior_unclear": ("prior_unclear_share",),
    "train_seconds": ("train_seconds",),
}
ELBOW_MEASURES = {"neg_elbo": "test negative ELBO", "recon_bce": "test reconstruction BCE"}


def figure_names(z_dims: Sequence[int]) -> list[str]:
    """Every figure a study over ``z_dims`` writes into STUDY_DIR/figures, in report order."""
    names = ["loss_curves.png", "reconstructions.png", "active_units.png", "prior_classes.png"]
    for z_dim in z_dims:
        names += [f"samples_z{z_dim}.png", f"interpolations_z{z_dim}.png"]
    if 1 in z_dims:
        names.append("strip_1d.png")
    if 2 in z_dims:
        names += ["manifold_2d.png", "manifold_data_2d.png", "manifold_quantiles.png",
                  "digit_map_2d.png"]
    names.append("elbow.png")
    return names


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value), minimum, maximum and the values."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()),
            "sd": float(array.std(ddof=1)) if len(array) > 1 else None,
            "min": float(array.min()), "max": float(array.max()),
            "values": [float(v) for v in array]}


def _value(record: dict[str, Any], key: str) -> float:
    value: Any = record
    for part in SUMMARISED[key]:
        value = value[part]
    return float(value)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per z_dim (keys str(z_dim)): the seeds and the spread of every SUMMARISED measure."""
    out: dict[str, dict[str, Any]] = {}
    for z_dim in sorted({int(r["z_dim"]) for r in records}):
        chosen = sorted((r for r in records if r["z_dim"] == z_dim), key=lambda r: r["seed"])
        out[str(z_dim)] = {"z_dim": z_dim, "seeds": [r["seed"] for r in chosen],
                           **{key: spread([_value(r, key) for r in chosen])
                              for key in SUMMARISED}}
    return out


def _table(records: Sequence[dict[str, Any]], key: str, z_dims: Sequence[int],
           seeds: Sequence[int]) -> np.ndarray:
    """(n_seeds, n_z_dims) values of one measure."""
    found = {(r["z_dim"], r["seed"]): _value(r, key) for r in records}
    return np.array([[found[z, s] for z in z_dims] for s in seeds])


def elbow_results(records: Sequence[dict[str, Any]], z_dims: Sequence[int],
                  seeds: Sequence[int], tolerances: Sequence[float]) -> dict[str, Any]:
    """The elbow of each ELBOW_MEASURES measure at each tolerance: on the mean over seeds
    (``at``, ``reached``) and on every seed's own curve (``per_seed``)."""
    out: dict[str, Any] = {"tolerances": list(tolerances), "original": ORIGINAL_ELBOW,
                           "rule": ELBOW_RULE, "measures": {}}
    for key, label in ELBOW_MEASURES.items():
        table = _table(records, key, z_dims, seeds)
        mean = table.mean(0)
        at = elbows(z_dims, mean.tolist(), tolerances)
        out["measures"][key] = {
            "label": label, "range": float(mean.max() - mean.min()), "at": at,
            "reached": [elbow_reached(z_dims, a) for a in at],
            "per_seed": {str(s): elbows(z_dims, row.tolist(), tolerances)
                         for s, row in zip(seeds, table, strict=True)},
        }
    return out


def _load(config: StudyConfig, z_dim: int, seed: int, device: torch.device) -> LoadedRun:
    loaded = load_run(config.run_dir(z_dim, seed), which="best", device=device)
    if loaded.model.conditional:
        raise VaelabError(f"{config.run_dir(z_dim, seed)} holds a conditional model; the study "
                          "needs an unconditional one")
    return loaded


def _first_of(labels: np.ndarray, digit: int) -> int:
    found = np.flatnonzero(labels == digit)
    return int(found[0]) if len(found) else 0


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return int(width), int(height)


def _check(found: Legibility) -> dict[str, Any]:
    return {"width": found.width, "height": found.height,
            "smallest_text_px": found.smallest_text_px, "overlaps": len(found.overlaps),
            "cut_off": len(found.cut_off)}


def _measure_run(config: StudyConfig, z_dim: int, seed: int, classifier: Classifier,
                 splits: Splits, test_features: np.ndarray, device: torch.device
                 ) -> tuple[dict[str, Any], LoadedRun, np.ndarray, torch.Tensor]:
    """One run's record for results.json, its loaded checkpoint, its test posterior means and
    its decoded prior samples. ``test_features``: the classifier's features of the test set."""
    from vaelab.evaluation.elbo import evaluate
    from vaelab.evaluation.sample_quality import feature_quality, prior_images

    loaded = _load(config, z_dim, seed, device)
    model, run_dir = loaded.model, config.run_dir(z_dim, seed)
    history = RunDir(run_dir).read_metrics()
    scores = evaluate(model, torch.from_numpy(splits.test_images).to(device),
                      torch.from_numpy(splits.test_labels).long().to(device),
                      loaded.config.binarize)
    mu, _ = latent.posterior_means(model, splits.test_images, loaded.config.binarize)
    n_active, activity = latent.active_units(mu, config.active_threshold)
    samples = prior_images(model, config.prior_samples, seed=seed)
    labels, confidence = classifier.predict(samples)
    counts = latent.class_histogram(latent.abstain(labels, confidence, config.min_confidence),
                                    len(splits.class_names))
    quality = feature_quality(test_features, classifier.features(samples), k=PR_K)
    best = loaded.checkpoint.state
    record = {
        "z_dim": z_dim, "seed": seed, "run_dir": str(run_dir), "binarize": loaded.config.binarize,
        "epochs": len(history), "best_epoch": best.best_epoch if best else None,
        "train_seconds": float(sum(r["seconds"] for r in history)),
        "final": history[-1] if history else {}, "history": history,
        "test": scores,
        "active_units": n_active, "unit_activity": activity.tolist(),
        "prior_counts": counts.tolist(),
        "prior_unclear_share": float(counts[-1] / max(counts.sum(), 1)),
        "sample_quality": quality.to_dict(),
    }
    return record, loaded, mu, samples


def analyze(config: StudyConfig, classifier: Classifier, device: torch.device,
            notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure each (z_dim, seed)'s best checkpoint; write the figures and results.json."""
    from vaelab.evaluation.elbo import bce_floor
    from vaelab.pictures.run_figures import reconstruction_pairs

    say = notify or (lambda message: None)
    study_dir = Path(config.out)
    fig_dir = study_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    splits = load_splits(config.train.dataset, config.train.data_dir)
    names = list(splits.class_names)
    starts = [_first_of(splits.test_labels, a) for a, _ in INTERP_PAIRS]
    ends = [_first_of(splits.test_labels, b) for _, b in INTERP_PAIRS]
    seeds = config.seed_list()
    checks: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    recons: dict[str, np.ndarray] = {}
    kept: dict[int, tuple[torch.nn.Module, np.ndarray]] = {}  # first seed's 1-D and 2-D models
    originals = np.zeros((0, 28, 28))
    test_features = classifier.features(to_float(torch.from_numpy(splits.test_images)))
    for z_dim in config.z_dims:
        for seed in seeds:
            say(f"measuring z_dim={z_dim}" + (f", seed {seed}" if len(seeds) > 1 else ""))
            record, loaded, mu, samples = _measure_run(config, z_dim, seed, classifier, splits,
                                                       test_features, device)
            records.append(record)
            if seed != seeds[0]:
                continue
            # The pictures of single models are the first seed's.
            save_grid(fig_dir / f"samples_z{z_dim}.png", samples[:100, 0].numpy(), ncol=10)
            rows = latent.interpolate(loaded.model, splits.test_images[starts],
                                      splits.test_images[ends], INTERP_STEPS,
                                      loaded.config.binarize)
            save_grid(fig_dir / f"interpolations_z{z_dim}.png", rows, ncol=INTERP_STEPS)
            for name in (f"samples_z{z_dim}.png", f"interpolations_z{z_dim}.png"):
                width, height = _png_size(fig_dir / name)
                checks[name] = {"width": width, "height": height, "smallest_text_px": None,
                                "overlaps": 0, "cut_off": 0}  # pictures without text
            originals, recons[f"z_dim={z_dim}"] = reconstruction_pairs(
                loaded.model, torch.from_numpy(splits.val_images[:N_RECON]).to(device),
                loaded.config.binarize)
            if z_dim in (1, 2):
                kept[z_dim] = (loaded.model, mu)

    say("drawing the sweep figures")
    binarize = ", ".join(sorted({r.pop("binarize") for r in records}))
    histories: dict[str, list[list[dict[str, Any]]]] = {}
    for record in records:
        histories.setdefault(f"z_dim={record['z_dim']}", []).append(record.pop("history"))
    elbow = elbow_results(records, list(config.z_dims), seeds, config.elbow_tolerances)
    floor = bce_floor(splits.test_images)
    _sweep_figures(config, fig_dir, records, histories, originals, recons, elbow,
                   floor if binarize == "none" else None, names, checks)

    from vaelab.models import model_registry

    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "config": config.to_dict(),
        "model_summary": model_registry.get(config.train.model).summary,
        "classifier": asdict(classifier.info),
        "class_names": names,
        "n_test": len(splits.test_images),
        "seeds": seeds,
        "pixels": {"binarize": binarize, "bce_floor": floor},
        "runs": records,
        "sweep": summarise(records),
        "elbow": elbow,
    }
    if 1 in kept:
        say("mapping the 1-D latent line")
        results["one_d"] = _one_d(config, *kept[1], classifier, names, fig_dir, checks)
    if 2 in kept:
        say("mapping the 2-D latent plane")
        results["two_d"] = _two_d(config, *kept[2], splits.test_labels, classifier, names,
                                  fig_dir, checks)
    results["figures"] = figure_names(config.z_dims)
    results["figure_checks"] = {name: checks[name] for name in results["figures"]}
    for stale in fig_dir.glob("*.png"):  # figures of an earlier analysis
        if stale.name not in results["figures"]:
            stale.unlink()
    atomic_write_json(study_dir / RESULTS, results)
    return results


def _sweep_figures(config: StudyConfig, fig_dir: Path, records: list[dict[str, Any]],
                   histories: dict[str, list[list[dict[str, Any]]]], originals: np.ndarray,
                   recons: dict[str, np.ndarray], elbow: dict[str, Any], floor: float | None,
                   names: list[str], checks: dict[str, dict[str, Any]]) -> None:
    """The figures that compare the z_dims: losses, reconstructions, units, classes, elbow."""
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
    shares, spreads = {}, {}
    for z_dim in z_dims:
        counts = np.array([r["prior_counts"] for r in records if r["z_dim"] == z_dim], float)
        share = counts / counts.sum(1, keepdims=True).clip(min=1)
        shares[z_dim] = share.mean(0)
        spreads[z_dim] = share.std(0, ddof=1) if len(share) > 1 else None
    checks["prior_classes.png"] = _check(figures.plot_prior_classes(
        fig_dir / "prior_classes.png", z_dims, shares, spreads, names, config.min_confidence))
    panels = {}
    for key, label in ELBOW_MEASURES.items():
        found = elbow["measures"][key]
        panels[label] = (_table(records, key, z_dims, seeds),
                         list(zip(elbow["tolerances"], found["at"], found["reached"],
                                  strict=True)))
    checks["elbow.png"] = _check(figures.plot_elbow(fig_dir / "elbow.png", z_dims, panels,
                                                    floor=floor))


def _one_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray,
           classifier: Classifier, names: list[str], fig_dir: Path,
           checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data_range = (float(means[:, 0].min()), float(means[:, 0].max()))
    ranges = {"prior range": config.traverse_range, "data range": data_range}
    strips, out = [], {}
    for title, (low, high) in ranges.items():
        z_show = np.linspace(low, high, config.traverse_images)
        images = latent.decode(model, z_show[:, None])  # type: ignore[arg-type]
        labels, confidence = classifier.predict(torch.from_numpy(images))
        labels = latent.abstain(labels, confidence, config.min_confidence)
        _, _, _, intervals = latent.digit_map_1d(
            model, classifier, low, high, config.map_points,  # type: ignore[arg-type]
            config.min_confidence, MIN_RUN)
        shares = latent.interval_shares(intervals, len(names))
        strips.append((f"{title}: z in [{low:.2f}, {high:.2f}]", z_show, images, labels,
                       intervals))
        out[title] = {"low": low, "high": high, "strip_labels": labels.tolist(),
                      "intervals": [asdict(i) for i in intervals],
                      "digits": sorted({i.label for i in intervals if i.label != latent.UNCLEAR}),
                      "shares": shares.tolist(), "unclear_share": float(shares[-1])}
    checks["strip_1d.png"] = _check(figures.plot_strip_1d(fig_dir / "strip_1d.png", strips,
                                                          names))
    return {"min_confidence": config.min_confidence, "min_run": MIN_RUN,
            "map_points": config.map_points, **out}


def _two_d(config: StudyConfig, model: torch.nn.Module, means: np.ndarray, labels: np.ndarray,
           classifier: Classifier, names: list[str], fig_dir: Path,
           checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    limit, n = config.grid_range, config.grid_size
    values = np.linspace(-limit, limit, n)
    box = (float(means[:, 0].min()), float(means[:, 0].max()),
           float(means[:, 1].min()), float(means[:, 1].max()))
    checks["manifold_2d.png"] = _check(figures.plot_manifold(
        fig_dir / "manifold_2d.png", latent.manifold(model, values),  # type: ignore[arg-type]
        values, values, f"decoded z on a {n} x {n} grid over [-{limit:g}, {limit:g}]²; "
        "dashed: the test set's latent range", box=box))
    xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
    checks["manifold_data_2d.png"] = _check(figures.plot_manifold(
        fig_dir / "manifold_data_2d.png", latent.manifold(model, xs, ys),  # type: ignore[arg-type]
        xs, ys, f"decoded z on a {n} x {n} grid over the test set's latent range"))
    q_lo, q_hi = config.quantiles
    probs = np.linspace(q_lo, q_hi, n)
    # Round probabilities as ticks, inner ones only where they keep clear of the ends.
    tick_probs = [q_lo, *(p for p in (0.25, 0.5, 0.75) if q_lo + 0.1 <= p <= q_hi - 0.1), q_hi]
    tick_z = [float(latent.quantile_values(p, p, 1)[0]) for p in tick_probs]
    checks["manifold_quantiles.png"] = _check(figures.plot_manifold(
        fig_dir / "manifold_quantiles.png",
        latent.manifold(model, latent.quantile_values(q_lo, q_hi, n)),  # type: ignore[arg-type]
        probs, probs, f"decoded z at the prior's quantiles {q_lo:g} to {q_hi:g}, {n} x {n}",
        ticks=(tick_probs, [f"{p:g}\n(z {z:+.2f})" for p, z in zip(tick_probs, tick_z,
                                                                   strict=True)]),
        labels=("prior quantile of z1", "prior quantile of z2")))
    map_values = np.linspace(-limit, limit, MAP_2D_POINTS)
    digit_grid, _ = latent.digit_map_2d(model, classifier, map_values,  # type: ignore[arg-type]
                                        config.min_confidence)
    checks["digit_map_2d.png"] = _check(figures.plot_digit_map_2d(
        fig_dir / "digit_map_2d.png", digit_grid, limit, means, labels, names, box))
    shares = latent.label_shares(digit_grid, len(names))
    points = latent.grid_points(map_values, map_values)
    inside = ((points[:, 0] >= box[0]) & (points[:, 0] <= box[1])
              & (points[:, 1] >= box[2]) & (points[:, 1] <= box[3]))
    unclear = digit_grid.ravel() == latent.UNCLEAR
    return {"limit": limit, "grid_size": n, "map_points": MAP_2D_POINTS,
            "min_confidence": config.min_confidence,
            "area_share": shares[:-1].tolist(), "unclear_share": float(shares[-1]),
            "digits": [int(d) for d in np.flatnonzero(shares[:-1])],
            "latent_extent": list(box),
            "beyond_share": latent.outside_share(values, values, box),
            "unclear_inside": float(unclear[inside].mean()) if inside.any() else None,
            "unclear_outside": float(unclear[~inside].mean()) if (~inside).any() else None}
