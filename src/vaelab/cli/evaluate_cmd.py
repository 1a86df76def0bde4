"""`vaelab evaluate`: per-image loss terms of a trained model on a data split, its test NLL and
the quality of its prior samples."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from vaelab.cli.trackers import add_tracker_arguments, check_trackers
from vaelab.errors import VaelabError
from vaelab.settings import SEED

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from vaelab.data.datasets import Splits
    from vaelab.evaluation.classifier import Classifier

log = logging.getLogger(__name__)

__all__ = ["CPU_SAMPLES", "GPU_SAMPLES", "NOT_A_LIKELIHOOD", "register"]

# Importance samples per image for --nll: the published protocol (Burda et al. 2015) on a GPU;
# on a CPU, K = 5000 over 10,000 test images takes about an hour, so the default is smaller.
GPU_SAMPLES = 5000
CPU_SAMPLES = 100


def register(sub: Any) -> None:
    parser = sub.add_parser("evaluate", help="per-image negative ELBO, BCE, MSE and KL of a run; "
                            "--nll adds the importance-sampled test log-likelihood")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--split", choices=("test", "val", "train"), default="test")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--data-dir", default=None,
                        help="where the dataset lives (default: as trained)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--nll", action="store_true",
                        help="also estimate -log p(x) by importance sampling (Burda et al. 2015)")
    parser.add_argument("--samples", type=int, default=None, metavar="K",
                        help=f"importance samples per image for --nll (default {GPU_SAMPLES} on a "
                        f"GPU, {CPU_SAMPLES} on a CPU; the K used is always printed)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="score only the first N images of the split")
    parser.add_argument("--fid", action="store_true",
                        help="also compare prior samples with the whole test split (whatever "
                        "--split and --limit say) in the digit classifier's features: Fréchet "
                        "distance, precision and recall (see docs/sample-quality.md); the "
                        "classifier is trained once and cached")
    parser.add_argument("--fid-samples", type=int, default=None, metavar="N",
                        help="prior samples drawn for --fid (default 10,000)")
    parser.add_argument("--classifier-dir", default=None, metavar="DIR",
                        help="classifier cache for --fid (default: as `vaelab study`, "
                        "<data root>/classifiers or ~/.cache/vaelab/classifiers)")
    parser.add_argument("--seed", type=SEED.parser("seed"), default=0,
                        help="seed of the importance samples and of the --fid prior samples")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_tracker_arguments(parser, "also log the test metrics into the run's tracker record: "
                          "mlflow (found by the run directory it was trained in)")
    parser.set_defaults(handler=run)


# One line on stderr when --nll meets a run trained on grey levels (binarize == "none").
NOT_A_LIKELIHOOD = ("vaelab: warning: this run was trained on grey-level pixels (binarize=none), "
                    "so its NLL is a cross-entropy, not comparable with published "
                    "binarised-MNIST NLLs; retrain with --binarize dynamic for that")


def _classifier(splits: Splits, data_dir: str | None, override: str | None,
                device: torch.device) -> tuple[Classifier, Path]:
    """The dataset's cached classifier, trained first (with word on stderr) when absent."""
    from vaelab.evaluation.classifier import (
        cached_classifier,
        classifier_cache_dir,
        classifier_filename,
    )

    cache = classifier_cache_dir(data_dir, override)
    if not (cache / classifier_filename(splits.content_id)).is_file():
        print(f"training the classifier on {splits.name} for --fid, once (cached in {cache})",
              file=sys.stderr)

    def on_epoch(epoch: int, epochs: int, loss: float) -> None:
        print(f"classifier epoch {epoch}/{epochs}: cross-entropy {loss:.4f}", file=sys.stderr)

    classifier, path, _ = cached_classifier(splits, cache, device=device, on_epoch=on_epoch)
    return classifier, path


class _NllBar:
    """A tqdm bar over image-samples, on stderr when it is a terminal."""

    def __init__(self, samples: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=None, desc=f"log p(x), K={samples}", unit="img", leave=False,
                         disable=not sys.stderr.isatty(), file=sys.stderr, mininterval=0.5)
        self._samples = samples

    def __call__(self, done: int, total: int) -> None:
        self._bar.total = total / self._samples
        self._bar.n = done / self._samples
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _record(run_dir: Any, key: str, report: dict[str, Any]) -> None:
    """Keep the result in the run directory; a read-only one only loses that copy."""
    from vaelab.runs.layout import RunDir

    try:
        RunDir(run_dir).record_evaluation(key, report)
    except VaelabError as exc:
        log.warning("the result was not kept in the run directory: %s", exc)


def _trackers(args: argparse.Namespace) -> tuple[str, ...] | None:
    names = tuple(getattr(args, "trackers", ()))
    check_trackers(names)
    return names or None


def run(args: argparse.Namespace) -> int:
    import torch

    from vaelab.cli.output import format_table, print_json
    from vaelab.data import load_splits
    from vaelab.device import resolve_device
    from vaelab.evaluation.elbo import bce_floor, evaluate
    from vaelab.evaluation.sample_quality import min_samples
    from vaelab.runs.rebuild import load_run

    if args.samples is not None and args.samples < 1:
        raise VaelabError(f"--samples must be at least 1, got {args.samples}")
    if args.limit is not None and args.limit < 1:
        raise VaelabError(f"--limit must be at least 1, got {args.limit}")
    fewest = min_samples()
    if args.fid_samples is not None and args.fid_samples < fewest:
        raise VaelabError(f"--fid-samples must be at least {fewest}, got {args.fid_samples}")
    trackers = _trackers(args)  # a missing library fails before any measuring
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, which=args.checkpoint, device=device)
    config = loaded.config
    data_dir = args.data_dir or config.data_dir
    splits = load_splits(config.dataset, data_dir, config.val_size)
    images_np, labels_np = splits.split(args.split)
    images = torch.from_numpy(images_np[:args.limit]).to(device)
    labels = torch.from_numpy(labels_np[:args.limit]).long().to(device)
    binarized = config.binarize != "none"
    result: dict[str, Any] = evaluate(loaded.model, images, labels, config.binarize)
    if not binarized:
        result["bce_floor"] = bce_floor(images_np[:args.limit])
    if args.nll and not binarized:
        print(NOT_A_LIKELIHOOD, file=sys.stderr)
    if args.nll:
        from vaelab.evaluation.likelihood import estimate_nll

        samples = args.samples or (GPU_SAMPLES if device.type == "cuda" else CPU_SAMPLES)
        bar = _NllBar(samples)
        try:
            nll = estimate_nll(loaded.model, images, labels, config.binarize, samples=samples,
                               seed=args.seed, progress=bar)
        finally:
            bar.close()
        result.update(nll=nll.nll, nll_se=nll.nll_se, nll_samples=nll.samples)
        if binarized:  # bits per dimension are a likelihood's unit, not a cross-entropy's
            result["bits_per_dim"] = nll.bits_per_dim
    quality_source = ""
    if args.fid:
        from vaelab.evaluation.sample_quality import DEFAULT_SAMPLES, sample_quality

        if not splits.labelled:
            raise VaelabError(f"--fid needs a classifier, and {splits.name} has no labels to "
                              "train one on")
        classifier, path = _classifier(splits, data_dir, args.classifier_dir, device)
        quality = sample_quality(loaded.model, classifier, splits.test_images,
                                 n_samples=args.fid_samples or DEFAULT_SAMPLES, seed=args.seed)
        result.update(quality.to_dict())
        quality_source = (f"sample quality: {quality.n_samples} prior samples against the "
                          f"{quality.n_real} test images, in the hidden-layer features of {path}")
    report = {"split": args.split, **result, "model": config.model, "z_dim": config.z_dim,
              "dataset": config.dataset, "binarize": config.binarize, "binarized": binarized,
              "checkpoint": args.checkpoint}
    if args.limit is None:  # a whole split: kept for `vaelab runs`
        _record(loaded.run_dir, f"{args.split}/{args.checkpoint}", report)
    if trackers is not None:
        from vaelab.trackers import TrackerOptions, TrackerSet

        numbers = {f"{args.split}_{k}": float(v) for k, v in result.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        tracked = TrackerSet.create(trackers, TrackerOptions(experiment=config.experiment))
        tracked.log_evaluation(loaded.run_dir, numbers)
    if args.json:
        print_json(report)
        return 0
    print(f"{config.model} z_dim={config.z_dim} on {config.dataset} {args.split} "
          f"({result['n']} images, binarize={config.binarize}), per image:")
    rows: list[list[Any]] = [["negative ELBO (nats)", result["neg_elbo"]],
                             ["reconstruction BCE (nats)", result["recon_bce"]]]
    if not binarized:
        rows.append(["BCE floor, entropy of the pixels (nats)", result["bce_floor"]])
    rows += [["KL (nats)", result["kl"]],
             ["pixel MSE (per pixel)", result["mse"]]]
    if args.nll:
        k = result["nll_samples"]
        rows.append([f"NLL, K={k} (nats)", f"{result['nll']:.2f} ± {result['nll_se']:.2f}"])
        if binarized:
            rows.append(["NLL (bits/dim)", result["bits_per_dim"]])
    if args.fid:
        rows += [["Fréchet distance, classifier features", result["fd"]],
                 [f"precision (k={result['pr_k']})", result["precision"]],
                 [f"recall (k={result['pr_k']})", result["recall"]]]
    print(format_table(rows, ["measure", "value"]))
    if not binarized:
        print("grey-level pixels: no model's BCE goes below the floor, and the BCE and negative "
              "ELBO are not log-likelihoods")
    if args.fid:
        print(quality_source)
    if args.nll:
        where = "GPU" if device.type == "cuda" else device.type.upper()
        note = "" if args.samples else f" (the {where} default)"
        print(f"importance samples per image: K={result['nll_samples']}{note}; ± is one standard "
              "error across images" + ("" if result["nll_samples"] >= GPU_SAMPLES else
                                       f"; the published protocol uses --samples {GPU_SAMPLES}"))
    return 0
