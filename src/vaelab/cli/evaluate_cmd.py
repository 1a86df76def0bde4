"""`vaelab evaluate`: per-image loss terms of a trained model on a data split, and its test NLL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vaelab.errors import VaelabError
from vaelab.settings import SEED

__all__ = ["CPU_SAMPLES", "GPU_SAMPLES", "register"]

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
    parser.add_argument("--seed", type=SEED.parser("seed"), default=0,
                        help="seed of the importance samples")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    import torch

    from vaelab.cli.output import format_table, print_json
    from vaelab.data import load_splits
    from vaelab.device import resolve_device
    from vaelab.evaluation.elbo import evaluate
    from vaelab.runs.checkpoint import load_run

    if args.samples is not None and args.samples < 1:
        raise VaelabError(f"--samples must be at least 1, got {args.samples}")
    if args.limit is not None and args.limit < 1:
        raise VaelabError(f"--limit must be at least 1, got {args.limit}")
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, which=args.checkpoint, device=device)
    config = loaded.config
    splits = load_splits(config.dataset, args.data_dir or config.data_dir, config.val_size)
    images_np, labels_np = splits.split(args.split)
    images = torch.from_numpy(images_np[:args.limit]).to(device)
    labels = torch.from_numpy(labels_np[:args.limit]).long().to(device)
    result: dict[str, Any] = evaluate(loaded.model, images, labels, config.binarize)
    if args.nll:
        from vaelab.evaluation.likelihood import estimate_nll

        samples = args.samples or (GPU_SAMPLES if device.type == "cuda" else CPU_SAMPLES)
        bar = _NllBar(samples)
        try:
            nll = estimate_nll(loaded.model, images, labels, config.binarize, samples=samples,
                               seed=args.seed, progress=bar)
        finally:
            bar.close()
        result.update(nll=nll.nll, nll_se=nll.nll_se, bits_per_dim=nll.bits_per_dim,
                      nll_samples=nll.samples)
    report = {"split": args.split, **result, "model": config.model, "z_dim": config.z_dim,
              "dataset": config.dataset, "binarize": config.binarize,
              "checkpoint": args.checkpoint}
    if args.json:
        print_json(report)
        return 0
    print(f"{config.model} z_dim={config.z_dim} on {config.dataset} {args.split} "
          f"({result['n']} images, binarize={config.binarize}), per image:")
    rows: list[list[Any]] = [["negative ELBO (nats)", result["neg_elbo"]],
                             ["reconstruction BCE (nats)", result["recon_bce"]],
                             ["KL (nats)", result["kl"]],
                             ["pixel MSE (per pixel)", result["mse"]]]
    if args.nll:
        k = result["nll_samples"]
        rows += [[f"NLL, K={k} (nats)", f"{result['nll']:.2f} ± {result['nll_se']:.2f}"],
                 ["NLL (bits/dim)", result["bits_per_dim"]]]
    print(format_table(rows, ["measure", "value"]))
    if args.nll:
        where = "GPU" if device.type == "cuda" else device.type.upper()
        note = "" if args.samples else f" (the {where} default)"
        print(f"importance samples per image: K={result['nll_samples']}{note}; ± is one standard "
              "error across images" + ("" if result["nll_samples"] >= GPU_SAMPLES else
                                       f"; the published protocol uses --samples {GPU_SAMPLES}"))
    return 0
