"""Seconds per training epoch: vaelab's loop against the pytorch/examples VAE data path.

Both loops train the same network (784-400-20-400-784, ReLU, Adam 1e-3) on the same images,
in this one process, interleaved (reference epoch, vaelab epoch, reference epoch, ...), and
the table reports medians, so a machine shared with other work slows both alike.

* reference: pytorch/examples ``vae/main.py`` — a ``torch.utils.data.DataLoader`` (shuffle,
  ``num_workers=0``) over a Dataset returning one float tensor per image, made as
  torchvision's MNIST + ``ToTensor`` make it (a PIL image, then a float tensor; the same
  code, without depending on torchvision), the images moved to the device per batch,
  sigmoid + ``binary_cross_entropy(reduction="sum")``, default Adam, ``loss.item()`` every
  step. The speed-up is measured against it.
* reference tensors: the same loop over a lighter Dataset that slices the uint8 tensor and
  converts it per image (no PIL); its column shows how much of the gap is PIL alone.
* vaelab: ``vaelab.training.epoch.train_epoch`` with the step ``fit`` uses (images resident as
  uint8, batches gathered by index into preallocated buffers, BCE-with-logits, fused Adam): in
  fp32 on the CPU a stack of one whose gradient is written out (``stacked_grad``), on CUDA
  one CUDA graph per step; bf16, and ``torch.compile`` with ``--compile``.
* vaelab fp32 autograd (CPU): the same step with autograd's backward (``TrainStep``), to show
  what the written-out gradient saves in the same run.

GFLOP/s counts the matrix products of forward + backward per image:
  forward   2 * (784*400 + 400*40 + 20*400 + 400*784)              = 1,302,400
  backward  2 * (784*400 + 400*40 + 20*400 + 400*784)  (weight grads)
          + 2 * (400*40 + 20*400 + 400*784)   (input grads; none for the pixels)
  total 3,280,000 FLOP per image, 196.8 GFLOP per epoch of 60,000 images. (The common
  "3 x forward" estimate, 234 GFLOP, also counts the unneeded gradient of the pixels.)

Usage:
  python benchmarks/bench_train.py                       # timing, CPU (+ CUDA if present)
  python benchmarks/bench_train.py --quality             # + test loss after 10 epochs each
  python benchmarks/bench_train.py --compile --precision fp32 bf16
Data: full MNIST from --data-dir or $VAELAB_DATA (else the shipped mnist-sample).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vaelab.cli.output import format_table
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.evaluation.elbo import evaluate
from vaelab.models import create_model
from vaelab.training.epoch import train_epoch
from vaelab.training.fit import fresh_step
from vaelab.training.stacked_step import StackedStep
from vaelab.training.step import TrainStep, make_optimizer

LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]  # (in, out) of each matrix product
FLOP_PER_IMAGE = 2 * sum(i * o for i, o in LAYERS) * 2 + 2 * sum(i * o for i, o in LAYERS[1:])


# -- the reference: pytorch/examples vae/main.py, data path and all --------------------------
class ReferenceVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def reference_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
                   logvar: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class PerImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """One float tensor (1, 28, 28) in [0, 1] per __getitem__, straight from the uint8 tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].to(torch.float32).div(255).unsqueeze(0), int(self.labels[i])


class TorchvisionStyleDataset(PerImageDataset):
    """What torchvision's MNIST + ToTensor do per image: a PIL image, then a float tensor.

    The code of ``MNIST.__getitem__`` and ``to_tensor`` for a mode-"L" image, without
    depending on torchvision.
    """

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import numpy as np
        from PIL import Image

        img, target = self.images[i], int(self.labels[i])
        pic = Image.fromarray(img.numpy())
        tensor = torch.from_numpy(np.array(pic, np.uint8, copy=True))
        tensor = tensor.view(pic.size[1], pic.size[0], 1).permute((2, 0, 1)).contiguous()
        return tensor.to(dtype=torch.get_default_dtype()).div(255), target


@dataclass
class Loop:
    """One training loop under test: ``epoch()`` trains one pass, ``test_loss()`` scores it."""

    name: str
    epoch: Callable[[], None]
    test_loss: Callable[[], float]


def reference_loop(images: torch.Tensor, labels: torch.Tensor, test: torch.Tensor,
                   batch: int, device: torch.device, seed: int, pil: bool = True) -> Loop:
    torch.manual_seed(seed)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dataset = (TorchvisionStyleDataset if pil else PerImageDataset)(images, labels)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True)

    def epoch() -> None:
        model.train()
        train_loss = 0.0
        for data, _ in loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = reference_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()

    @torch.no_grad()
    def test_loss() -> float:
        model.eval()
        total = 0.0
        for start in range(0, len(test), 1000):
            x = test[start:start + 1000].to(device).float().div(255).unsqueeze(1)
            recon, mu, logvar = model(x)
            total += reference_loss(recon, x, mu, logvar).item()
        return total / len(test)

    return Loop("reference" if pil else "reference tensors", epoch, test_loss)


def vaelab_loop(images: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, batch: int,
                device: torch.device, seed: int, precision: str, compile: bool,
                graphs: bool | None = None, autograd: bool = False) -> Loop:
    config = TrainConfig(model="mlp", z_dim=20, batch_size=batch, lr=1e-3, seed=seed,
                         precision=precision, compile=compile, device=device.type)
    torch.manual_seed(seed)
    model = create_model(config.model_config()).to(device)
    train_images, train_labels = images.to(device), labels.to(device)
    step: TrainStep | StackedStep
    if autograd:
        step = TrainStep(model, make_optimizer(model, config, device), config, train_images,
                         train_labels, graphs=graphs)
    else:
        step = fresh_step(model, config, train_images, train_labels, graphs=graphs)
    test_images = test.to(device)
    count = [0]

    def epoch() -> None:
        train_epoch(step, count[0])
        count[0] += 1

    def test_loss() -> float:
        return evaluate(step.member_model(0), test_images)["neg_elbo"]

    label = "vaelab " + precision + (" compile" if compile else "")
    label += " autograd" if autograd else ""
    if device.type == "cuda" and isinstance(step, TrainStep) and not step.use_graphs:
        label += " eager"
    return Loop(label, epoch, test_loss)


def timed(loop: Loop, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    loop.epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_of_one_epoch(kind: str, args: argparse.Namespace, batch: int) -> float:
    """Peak RSS of a fresh process that loads the data and trains one epoch of ``kind``."""
    argv = [sys.executable, __file__, "--rss-of", kind, "--batch-sizes", str(batch),
            "--dataset", args.dataset, "--max-images", str(args.max_images)]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])


def load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    splits = load_splits(args.dataset, args.data_dir, 0)
    images, labels = splits.split("train")
    test, _ = splits.split("test")
    n = min(len(images), args.max_images) if args.max_images else len(images)
    return (torch.from_numpy(images[:n].copy()), torch.from_numpy(labels[:n].copy()).long(),
            torch.from_numpy(test.copy()))


def loop_kinds(args: argparse.Namespace, device: torch.device) -> list[str]:
    """The loops to time: "reference", then "vaelab PRECISION [compile] [eager]"."""
    kinds = ["reference", "reference tensors"]
    for precision in args.precision:
        kinds.append(f"vaelab {precision}")
        if device.type == "cpu" and precision == "fp32":
            kinds.append("vaelab fp32 autograd")  # the step without the written-out gradient
        if args.compile:
            kinds.append(f"vaelab {precision} compile")
    if device.type == "cuda":
        kinds.append("vaelab fp32 eager")  # the same step without CUDA graphs, for scale
    return kinds


def make_loop(kind: str, args: argparse.Namespace, data: tuple[torch.Tensor, ...], batch: int,
              device: torch.device) -> Loop:
    images, labels, test = data
    if kind.startswith("reference"):
        return reference_loop(images, labels, test, batch, device, args.seed,
                              pil=kind == "reference")
    words = kind.split()
    return vaelab_loop(images, labels, test, batch, device, args.seed, words[1],
                       compile="compile" in words, graphs=False if "eager" in words else None,
                       autograd="autograd" in words)


def make_loops(args: argparse.Namespace, data: tuple[torch.Tensor, ...], batch: int,
               device: torch.device) -> list[Loop]:
    return [make_loop(kind, args, data, batch, device) for kind in loop_kinds(args, device)]


def matmul_rate(device: torch.device, size: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of one large fp32 matrix product on ``device``, measured now (median of runs).

    The matrix-product floor of an epoch is its FLOP at this rate: what the step would take if
    it were nothing but large, efficient products.
    """
    size = size * 4 if device.type == "cuda" else size
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    times = []
    for _ in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times[2:]) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELAB_DATA"))
    parser.add_argument("--dataset", default=None,
                        help="default: mnist if found, else mnist-sample")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loop (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--max-images", type=int, default=0, help="use only the first N (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quality", action="store_true",
                        help="train each loop --quality-epochs epochs and report its test loss")
    parser.add_argument("--quality-epochs", type=int, default=10)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child runs")
    parser.add_argument("--rss-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dataset is None:
        has_full = args.data_dir and (Path(args.data_dir) / "mnist").is_dir()
        args.dataset = "mnist" if has_full else "mnist-sample"
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(args)
    n = len(data[0])

    if args.rss_of:  # child mode: one epoch of one loop, then report this process's peak RSS
        device, batch = torch.device("cpu"), args.batch_sizes[0]
        loop = make_loop(args.rss_of, args, data, batch, device)
        loop.epoch()
        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return 0

    print(f"data: {args.dataset}, {n} training images; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {os.cpu_count()} CPUs")
    print(f"matrix-product FLOP per image {FLOP_PER_IMAGE:,}; per epoch "
          f"{FLOP_PER_IMAGE * n / 1e9:.1f} GFLOP")
    rows: list[list[Any]] = []
    quality: list[list[Any]] = []
    for device_name in args.devices:
        if device_name == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU visible, skipped")
            continue
        device = torch.device(device_name)
        rate = matmul_rate(device)
        floor = FLOP_PER_IMAGE * n / rate / 1e9
        capability = (torch.backends.cpu.get_cpu_capability() if device.type == "cpu"
                      else torch.cuda.get_device_name())
        print(f"{device_name} ({capability}): a {2048 * (4 if device.type == 'cuda' else 1)}^2 "
              f"fp32 matrix product runs at {rate:.0f} GFLOP/s, so the matrix-product floor "
              f"of an epoch is {floor:.2f} s", flush=True)
        for batch in args.batch_sizes:
            loops = make_loops(args, data, batch, device)
            for loop in loops:  # warm-up epoch (allocator, oneDNN/cuBLAS, graph capture)
                loop.epoch()
            times: dict[str, list[float]] = {loop.name: [] for loop in loops}
            for _ in range(args.repeats):
                for loop in loops:
                    times[loop.name].append(timed(loop, device))
            ref = statistics.median(times["reference"])
            light = statistics.median(times["reference tensors"])
            for loop in loops:
                t = statistics.median(times[loop.name])
                rss = (rss_of_one_epoch(loop.name, args, batch)
                       if device.type == "cpu" and not args.no_rss else float("nan"))
                rows.append([device_name, batch, loop.name, round(t, 3),
                             round(min(times[loop.name]), 3), round(ref / t, 2),
                             round(light / t, 2),
                             round(n / t), round(FLOP_PER_IMAGE * n / t / 1e9, 1),
                             f"{100 * floor / t:.0f} %", round(rss) if rss == rss else "-"])
            print(format_table(rows[-len(loops):], _HEADERS), flush=True)
            if args.quality and batch == 128:
                quality += quality_rows(args, data, batch, device)
        # The share of the floor uses the rate measured before the loops; on a machine whose
        # speed drifts, the same product measured after them shows by how much.
        print(f"{device_name}: the same product after the loops: {matmul_rate(device):.0f} "
              f"GFLOP/s (before: {rate:.0f})", flush=True)
    print("\n" + format_table(rows, _HEADERS))
    if quality:
        print(f"\ntest loss (negative ELBO, nats per image, one posterior sample) after "
              f"{args.quality_epochs} epochs, batch 128:")
        print(format_table(quality, ["device", "loop", "test loss", "minus reference",
                                     "seconds/epoch"]))
    if "cpu" in args.devices and not args.no_rss and args.dataset == "mnist":
        rss, seconds, code = train_cli_rss(args)
        print(f"\n`vaelab train --dataset mnist --epochs 1 --device cpu` (fresh process): "
              f"peak RSS {rss:.0f} MB, {seconds:.1f} s, exit code {code}")
    return 0


_HEADERS = ["device", "batch", "loop", "s/epoch (median)", "min", "x reference",
            "x reference tensors", "images/s", "GFLOP/s", "share of floor", "peak RSS MB"]


def quality_rows(args: argparse.Namespace, data: tuple[torch.Tensor, ...], batch: int,
                 device: torch.device) -> list[list[Any]]:
    rows: list[list[Any]] = []
    ref_loss = None
    for kind in loop_kinds(args, device):
        if kind == "reference tensors":
            continue  # the same model and loss as "reference"; only its data path differs
        loop = make_loop(kind, args, data, batch, device)
        started = time.perf_counter()
        for _ in range(args.quality_epochs):
            loop.epoch()
        per_epoch = (time.perf_counter() - started) / args.quality_epochs
        loss = loop.test_loss()
        ref_loss = loss if ref_loss is None else ref_loss
        rows.append([device.type, loop.name, round(loss, 2), round(loss - ref_loss, 2),
                     round(per_epoch, 2)])
        print(f"  {loop.name}: test loss {loss:.2f} after {args.quality_epochs} epochs", flush=True)
    return rows


def train_cli_rss(args: argparse.Namespace) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-c", _RSS_CHILD, "--dataset", "mnist", "--epochs", "1",
                "--device", "cpu", "--out", str(Path(tmp) / "run")]
        if args.data_dir:
            argv += ["--data-dir", args.data_dir]
        out = subprocess.run(argv, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return result["peak_rss_mb"], result["seconds"], result["code"]


# Runs `vaelab train` in a fresh interpreter and reports that interpreter's own peak RSS.
_RSS_CHILD = """
import json, resource, sys, time
from vaelab.cli.main import main
started = time.perf_counter()
code = main(["train", *sys.argv[1:]])
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - started, "code": code}))
"""

if __name__ == "__main__":
    sys.exit(main())
