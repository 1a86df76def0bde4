"""`vaelab evaluate`: per-image loss terms of a trained model on a data split, its test NLL and
the quality of its prior samples."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from vaelab.cli.plugins import add_plugin_arguments
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
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None,
                        help="which checkpoint to score (default best; a recipe's run: the one "
                        "its protocol names)")
    parser.add_argument("--data-dir", default=None,
                        help="where the dataset lives (default: as trained)")
    parser.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                        help="score this dataset instead of the one the run was trained on "
                        "(also: where that data lies now, if it moved)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--nll", action="store_true",
                        help="also estimate -log p(x) by importance sampling (Burda et al. 2015)")
    parser.add_argument("--samples", type=int, default=None, metavar="K",
                        help=f"importance samples per image for --nll (default {GPU_SAMPLES} on a "
                        f"GPU, {CPU_SAMPLES} on a CPU; a recipe's run: its protocol's, "
                        f"{GPU_SAMPLES} on any device; the K used is always printed)")
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
    add_plugin_arguments(parser)
    parser.set_defaults(handler=run)


# One line on stderr when --nll meets a run trained on grey levels (binarize == "none").
NOT_A_LIKELIHOOD = ("vaelab: warning: this run was trained on grey-level pixels (binarize=none), "
                    "so its NLL is a cross-entropy, not comparable with published "
                    "binarised-MNIST NLLs; retrain with --binarize dynamic for that")


def _classifier(splits: Splits, data_dir: str | None, override: str | None,
                device: torch.device) -> tuple[Classifier, Path]:
    """The dataset's cached classifier, trained first (with word on stderr) when absent."""
    from vaelab.data.datasets import display_name
    from vaelab.evaluation.classifier import cached_classifier, classifier_cache_dir

    cache = classifier_cache_dir(data_dir, override)

    def on_train() -> None:
        print(f"training the classifier on {display_name(splits.name)} for --fid, once "
              f"(cached in {cache})", file=sys.stderr)

    def on_epoch(epoch: int, epochs: int, loss: float) -> None:
        print(f"classifier epoch {epoch}/{epochs}: cross-entropy {loss:.4f}", file=sys.stderr)

    classifier, path, _ = cached_classifier(splits, cache, device=device, on_epoch=on_epoch,
                                            on_train=on_train)
    return classifier, path


# After this many seconds of scoring, one line on stderr gives the time left at the measured rate.
ETA_AFTER_S = 20.0


class _NllBar:
    """A tqdm bar over image-samples, on stderr when it is a terminal; and, once the scoring has
    run ``ETA_AFTER_S`` seconds, one line with the time it still needs at the rate measured."""

    def __init__(self, samples: int) -> None:
        import time

        from tqdm import tqdm

        self._bar = tqdm(total=None, desc=f"log p(x), K={samples}", unit="img", leave=False,
                         disable=not sys.stderr.isatty(), file=sys.stderr, mininterval=0.5)
        self._samples = samples
        self._clock = time.perf_counter
        self._started = self._clock()
        self._told = False

    def __call__(self, done: int, total: int) -> None:
        self._bar.total = total / self._samples
        self._bar.n = done / self._samples
        self._bar.refresh()
        elapsed = self._clock() - self._started
        if not self._told and elapsed >= ETA_AFTER_S and 0 < done < total:
            self._told = True
            left = elapsed * (total - done) / done
            self._bar.write(f"log p(x): {100 * done / total:.1f}% scored in {elapsed:.0f} s; "
                            f"about {_duration(left)} left at this rate "
                            f"({done / elapsed:,.0f} image-samples/s)", file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" \
        if seconds >= 90 else f"{seconds:.0f} s"


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
    from vaelab.data.datasets import display_name
    from vaelab.device import resolve_device
    from vaelab.evaluation.elbo import bce_floor, evaluate
    from vaelab.evaluation.sample_quality import min_samples
    from vaelab.runs.rebuild import load_run
    from vaelab.runs.run_data import run_data

    if args.samples is not None and args.samples < 1:
        raise VaelabError(f"--samples must be at least 1, got {args.samples}")
    if args.limit is not None and args.limit < 1:
        raise VaelabError(f"--limit must be at least 1, got {args.limit}")
    fewest = min_samples()
    if args.fid_samples is not None and args.fid_samples < fewest:
        raise VaelabError(f"--fid-samples must be at least {fewest}, got {args.fid_samples}")
    trackers = _trackers(args)  # a missing library fails before any measuring
    device = resolve_device(args.device)
    followed = _recipe_of(args.run_dir)
    checkpoint = args.checkpoint or (followed.recipe.checkpoint if followed else "best")
    loaded = load_run(args.run_dir, which=checkpoint, device=device)
    config = loaded.config
    data_dir = args.data_dir or config.data_dir
    data = run_data(loaded.run_dir, config, args.dataset, data_dir)
    data.refuse_meaningless(args.split)
    data.check_model(loaded.model)
    if data.change is not None:
        print(f"vaelab: warning: {data.change.warning()}", file=sys.stderr)
    splits = data.splits
    if args.fid and not splits.labelled:  # refused before anything is measured or trained
        raise VaelabError(f"--fid needs a classifier, and {display_name(splits.name)} has no "
                          "labels to train one on; leave out --fid")
    images_np, labels_np = splits.split(args.split)
    images = torch.from_numpy(images_np[:args.limit]).to(device)
    labels = None if labels_np is None else \
        torch.from_numpy(labels_np[:args.limit]).long().to(device)
    binarized = config.binarize != "none"
    result: dict[str, Any] = evaluate(loaded.model, images, labels, config.binarize)
    if not binarized:
        result["bce_floor"] = bce_floor(images_np[:args.limit])
    if args.nll and not binarized:
        print(NOT_A_LIKELIHOOD, file=sys.stderr)
    if args.nll:
        from vaelab.evaluation.likelihood import estimate_nll

        samples = args.samples or (followed.recipe.nll_samples if followed else
                                   GPU_SAMPLES if device.type == "cuda" else CPU_SAMPLES)
        if followed and device.type != "cuda" and samples * len(images) >= 1_000_000:
            print(f"scoring {len(images):,} images with K = {samples} on the CPU takes long "
                  "(minutes to hours by model; measured times in docs/reproductions.md); the "
                  f"time left is printed after {ETA_AFTER_S:.0f} s", file=sys.stderr)
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

        classifier, path = _classifier(splits, data_dir, args.classifier_dir, device)
        quality = sample_quality(loaded.model, classifier, splits.test_images,
                                 n_samples=args.fid_samples or DEFAULT_SAMPLES, seed=args.seed)
        result.update(quality.to_dict())
        quality_source = (f"sample quality: {quality.n_samples} prior samples against the "
                          f"{quality.n_real} test images, in the hidden-layer features of {path}")
    report = {"split": args.split, **result, "model": config.model, "z_dim": config.z_dim,
              "dataset": splits.name, "data_sha256": splits.provenance.get("sha256"),
              "binarize": config.binarize, "binarized": binarized, "checkpoint": checkpoint}
    if followed is not None:
        protocol = _protocol(followed, args, checkpoint, result.get("nll_samples"))
        report["recipe"] = {**followed.to_dict(), "evaluated_as_protocol": not protocol,
                            "evaluation_differs": protocol}
    other_data = data.change is not None and data.change.other
    if args.limit is None and not other_data:  # a whole split: kept for `vaelab runs`
        _record(loaded.run_dir, f"{args.split}/{checkpoint}", report)
    if trackers is not None:
        from vaelab.trackers import TrackerOptions, TrackerSet

        numbers = {f"{args.split}_{k}": float(v) for k, v in result.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        tracked = TrackerSet.create(trackers, TrackerOptions(experiment=config.experiment))
        tracked.log_evaluation(loaded.run_dir, numbers)
    if args.json:
        print_json(report)
        return 0
    if followed is not None:
        differs = report["recipe"]["evaluation_differs"]
        print(f"recipe {followed.label()}; evaluated "
              + (f"unlike its protocol ({differs})" if differs else "as its protocol")
              + f": {followed.recipe.evaluation()}")
    print(f"{config.model} z_dim={config.z_dim} on {display_name(splits.name)} {args.split} "
          f"({result['n']} images, binarize={config.binarize}, {checkpoint} checkpoint), "
          "per image:")
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
        note = "" if args.samples else " (the recipe's protocol)" if followed \
            else f" (the {where} default)"
        print(f"importance samples per image: K={result['nll_samples']}{note}; ± is one standard "
              "error across images" + ("" if result["nll_samples"] >= GPU_SAMPLES else
                                       f"; the published protocol uses --samples {GPU_SAMPLES}"))
    return 0


def _recipe_of(run_dir: str) -> Any:
    """The recipe a run directory's config follows (``RecipeRun``), or None."""
    from vaelab.config import TrainConfig
    from vaelab.recipes import recipe_run
    from vaelab.runs.layout import RunDir

    run = RunDir(run_dir)
    if not run.config.is_file():
        return None  # load_run names what is missing
    try:
        config = TrainConfig.from_dict(run.read_config(), source=str(run.config))
    except VaelabError:
        return None  # another version's settings: scored without a recipe's defaults
    return recipe_run(config)


def _protocol(followed: Any, args: argparse.Namespace, checkpoint: str,
              samples: int | None) -> str:
    """How this evaluation departs from the recipe's protocol ("" when it does not)."""
    recipe = followed.recipe
    departures = []
    if args.split != "test":
        departures.append(f"the {args.split} split")
    if args.limit is not None:
        departures.append(f"the first {args.limit} images")
    if checkpoint != recipe.checkpoint:
        departures.append(f"the {checkpoint} checkpoint")
    if samples is None:
        departures.append("no NLL (add --nll)")
    elif samples != recipe.nll_samples:
        departures.append(f"K = {samples}")
    return ", ".join(departures)
