"""The study from end to end: classifier, sweep, measurements, report; and the report alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vaelab.device import resolve_device
from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import (
    ARCHITECTURE,
    Classifier,
    ClassifierSettings,
    cached_classifier,
    load_classifier,
)
from vaelab.runs.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, make_dir
from vaelab.runs.layout import RunDir
from vaelab.study.analysis import FIGURES_DIR, RESULTS, analyze
from vaelab.study.config import STUDY_FILE, StudyConfig, load_study_config
from vaelab.study.report import build_document, render_html, render_markdown
from vaelab.study.sweep import train_sweep
from vaelab.training.options import RunOptions
from vaelab.training.tracking import grouped_runs

__all__ = ["CLASSIFIER_FILE", "ReportPaths", "build_report", "default_classifier_dir",
           "prepare_classifier", "run_study", "study_classifier"]

log = logging.getLogger(__name__)

CLASSIFIER_FILE = "classifier.safetensors"  # the study's own copy of the classifier


@dataclass
class ReportPaths:
    """The files ``build_report`` wrote."""

    html: Path
    markdown: Path
    results: Path
    figures: list[Path]  # every figure the report shows, in report order


def default_classifier_dir(config: StudyConfig) -> Path:
    """``--classifier-dir``, else ``<data root>/classifiers``, else ``~/.cache/vaelab/classifiers``.

    The last is for a read-only data root (a shared or system dataset folder).
    """
    from vaelab.evaluation.classifier import classifier_cache_dir

    return classifier_cache_dir(config.train.data_dir, config.classifier_dir)


def prepare_classifier(config: StudyConfig, device: torch.device,
                       notify: Callable[[str], None]) -> Classifier | None:
    """The dataset's cached classifier (trained first if absent), copied into the study; None
    for a dataset without labels, which has none."""
    from vaelab.data import load_splits
    from vaelab.data.datasets import display_name

    def on_epoch(epoch: int, epochs: int, loss: float) -> None:
        notify(f"classifier epoch {epoch}/{epochs}: cross-entropy {loss:.4f}")

    splits = load_splits(config.train.dataset, config.train.data_dir,
                         resize=config.train.resize)
    if not splits.labelled:
        notify(f"{splits.name} has no labels: no classifier, so the measures that need one "
               "are left out")
        return None
    cache = default_classifier_dir(config)

    def on_train() -> None:
        notify(f"training the classifier on {display_name(splits.name)} (cached in {cache})")

    settings = ClassifierSettings(epochs=config.classifier_epochs)
    classifier, path, trained = cached_classifier(splits, cache, settings=settings,
                                                  device=device, on_epoch=on_epoch,
                                                  on_train=on_train)
    verb = "trained" if trained else "loaded"
    notify(f"classifier {verb}: {100 * classifier.info.test_accuracy:.2f} % test accuracy "
           f"({path})")
    study_dir = Path(config.out)
    for suffix in (".safetensors", ".json"):
        atomic_write_bytes((study_dir / CLASSIFIER_FILE).with_suffix(suffix),
                           path.with_suffix(suffix).read_bytes())
    return classifier


def study_classifier(config: StudyConfig, device: torch.device,
                     notify: Callable[[str], None]) -> Classifier | None:
    """The classifier saved in the study, when it has this version's architecture (so that a
    rebuilt report labels the decodings as before); otherwise (a study made by an older vaelab,
    whose classifier cannot refuse an image) the current one, from the cache or trained there
    once, copied into the study. None without labels."""
    from vaelab.data import load_splits

    saved = Path(config.out) / CLASSIFIER_FILE
    if not load_splits(config.train.dataset, config.train.data_dir,
                       resize=config.train.resize).labelled:
        return None
    if saved.is_file():
        classifier = load_classifier(saved, device)
        if classifier.info.architecture == ARCHITECTURE:
            return classifier
        notify(f"the study's classifier ({classifier.info.architecture}) is of an older kind, "
               f"which cannot refuse an image; measuring with the current one ({ARCHITECTURE})")
    return prepare_classifier(config, device, notify)


def _save_study_config(config: StudyConfig) -> None:
    study_dir = make_dir(config.out, "study directory")
    path = study_dir / STUDY_FILE
    if path.is_file():
        saved = load_study_config(study_dir).train
        for key in ("model", "dataset"):
            if getattr(saved, key) != getattr(config.train, key):
                raise VaelabError(f"{study_dir} holds a study of {key}={getattr(saved, key)!r}, "
                                  f"not {getattr(config.train, key)!r}; choose another --out")
    atomic_write_json(path, config.to_dict())


# Random images the sweep's model is run on before the study writes anything.
_CHECK_IMAGES = 8


def _check_model(config: StudyConfig) -> None:
    """The sweep's model keeps the model contract: a bad plugin fails before anything is
    written (each run is checked again on its own data before it trains)."""
    from vaelab.models import create_model
    from vaelab.models.contract import check_behaviour

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(config.run_configs()[0].model_config())
        x = torch.rand(_CHECK_IMAGES, *model.config.image_shape)
        check_behaviour(model, x, torch.arange(_CHECK_IMAGES) % model.config.num_classes)


def run_study(
    config: StudyConfig,
    options: RunOptions | None = None,
    notify: Callable[[str], None] | None = None,
) -> ReportPaths:
    """Train what is not trained yet, then measure every model and write the report."""
    say = notify or (lambda message: None)
    _check_model(config)
    _save_study_config(config)
    device = resolve_device(config.train.device)
    options = options or RunOptions()
    with grouped_runs(config.train, Path(config.out), config.to_dict()) as handles:
        train_sweep(config.run_configs(), replace(options, tracker_study=handles))
    prepare_classifier(config, device, say)
    return build_report(config.out, device=str(device), notify=say)


def build_report(study_dir: str | Path, device: str = "cpu",
                 notify: Callable[[str], None] | None = None) -> ReportPaths:
    """Measure a finished study's checkpoints and write report.html, report.md, results.json.

    Trains no model: a missing run is an error that says to run `vaelab study`. The classifier
    is the study's own unless other code trained it (``study_classifier``).
    """
    config = load_study_config(study_dir)
    study_dir = Path(study_dir)
    missing = [f"{z}" + (f" (seed {s})" if config.seeds > 1 else "")
               for z in config.z_dims for s in config.seed_list()
               if not RunDir(config.run_dir(z, s)).best.is_file()]
    if missing:
        raise VaelabError(f"{study_dir} has no trained model for z_dim {', '.join(missing)}; "
                          f"finish it with `vaelab study --out {study_dir}`")
    say = notify or (lambda message: None)
    classifier = study_classifier(config, resolve_device(device), say)
    results = analyze(config, classifier, resolve_device(device), notify)
    doc = build_document(results)
    html_path, md_path = study_dir / "report.html", study_dir / "report.md"
    atomic_write_text(html_path, render_html(doc, study_dir / FIGURES_DIR))
    atomic_write_text(md_path, render_markdown(doc, FIGURES_DIR))
    return ReportPaths(html_path, md_path, study_dir / RESULTS,
                       [study_dir / FIGURES_DIR / name for name in doc.figures()])
