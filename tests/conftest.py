"""Shared fixtures: tiny IDX datasets built on the fly, and the real data when available."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

# Under pytest-xdist each of the workers shares the machine's cores: one torch thread per worker
# (and per process it starts) avoids OpenMP threads waiting on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
# Real MNIST lives where $VAELAB_DATA points (CI sets it to ../shared/data).
REAL_DATA = os.environ.get("VAELAB_DATA")

# Property tests: "ci" gives every parser 1,000 generated files; "dev" (the default outside CI)
# fewer, for a quick local run. VAELAB_HYPOTHESIS_PROFILE chooses one explicitly.
settings.register_profile("ci", max_examples=1000)
settings.register_profile("dev", max_examples=150)
settings.load_profile(os.environ.get("VAELAB_HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 0x0000080R, big-endian dims, raw bytes)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 28x28 images: each label draws a bar at its own position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 4 + 2 * label : 6 + 2 * label, 4:24] = 255
    return images, labels


@pytest.fixture
def tiny_dataset_dir(tmp_path: Path) -> Path:
    """A data root holding mnist-sample-shaped files under tiny/ (600 train, 100 test)."""
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    train_x, train_y = make_digits(600, seed=1)
    test_x, test_y = make_digits(100, seed=2)
    write_idx(folder / "train-images-idx3-ubyte.gz", train_x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", test_x)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", test_y)
    return folder.parent


@pytest.fixture
def tiny_dataset(tiny_dataset_dir: Path) -> str:
    """Registers the tiny files as dataset 'tiny' (checksums of this very data) for one test."""
    import hashlib

    from vaelab.data.datasets import DatasetSpec, dataset_registry
    from vaelab.data.idx import decompressed_bytes

    names = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    sums = {
        k: hashlib.sha256(decompressed_bytes(tiny_dataset_dir / "tiny" / f"{v}.gz")).hexdigest()
        for k, v in names.items()
    }
    dataset_registry._entries["tiny"] = DatasetSpec(
        name="tiny", description="test data", sha256=sums
    )
    yield "tiny"
    dataset_registry._entries.pop("tiny", None)


@pytest.fixture
def real_mnist() -> str:
    """The data root holding full MNIST; skips when $VAELAB_DATA does not hold it."""
    if not REAL_DATA or not (Path(REAL_DATA) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("full MNIST not available (set VAELAB_DATA to a folder holding mnist/)")
    return REAL_DATA


@pytest.fixture
def train_args(tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> list[str]:
    """CLI flags for a fast training run on the tiny dataset."""
    return [
        "--dataset",
        tiny_dataset,
        "--data-dir",
        str(tiny_dataset_dir),
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--z-dim",
        "4",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
    ]


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small matrices on a shared machine: one thread avoids oversubscription stalls."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The keys of an epoch record in metrics.jsonl besides "epoch" (what trackers are given).
EPOCH_RECORD_KEYS = ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
                     "val_mse", "seconds", "lr")


def assert_padding_has_zero_gradient(stacked: Any, z_dims: Sequence[int]) -> None:
    """The posterior and first decoder weights of a stack, beyond each model's z_dim, got
    exactly zero gradient (so Adam keeps that padding at zero); the real units got some."""
    z_max = max(z_dims)
    posterior = stacked.params["to_posterior.weight"].grad  # (M, hidden, 2 * z_max)
    decoder_in = stacked.params["decoder.0.weight"].grad  # (M, z_max, hidden)
    assert posterior is not None and decoder_in is not None
    for k, z in enumerate(z_dims):
        assert not posterior[k][:, z:z_max].any() and not posterior[k][:, z_max + z:].any()
        assert not decoder_in[k][z:].any()
        assert posterior[k][:, :z].abs().sum() > 0


def stop_after(steps: int) -> Callable[[], bool]:
    """A ``stop_requested`` that asks to stop after ``steps`` optimisation steps."""
    taken = {"n": 0}

    def stop() -> bool:
        taken["n"] += 1
        return taken["n"] >= steps

    return stop


def reference_elbo(model: Any, images: Any, labels: Any = None, binarize: str = "none",
                   seed: int = 0, block: int = 1000) -> dict[str, float]:
    """What ``vaelab.evaluation.elbo.evaluate`` must report, computed without vaelab's loss code.

    The Bernoulli log-likelihood is written out, the KL comes from ``torch.distributions`` and
    the pixel error from the decoded posterior mean. As evaluation promises: one posterior draw
    per image from ``torch.manual_seed(seed)``, images taken in blocks of ``block``, each block
    binarised with its own seed (its first index + 1). Means per image; ``mse`` per pixel.
    """
    import torch
    import torch.nn.functional as F
    from torch.distributions import Normal, kl_divergence

    totals = {"neg_elbo": 0.0, "recon_bce": 0.0, "kl": 0.0, "mse": 0.0}
    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(images), block):
            x = images[start:start + block].unsqueeze(1).float().div(255)
            if binarize == "static":
                x = (x > 0.5).float()
            elif binarize == "dynamic":
                x = torch.bernoulli(x, generator=torch.Generator().manual_seed(start + 1))
            y = labels[start:start + block] if model.conditional else None
            mu, logvar = model.encode(x, y)
            sigma = (0.5 * logvar.double()).exp()
            z = mu + torch.randn(mu.shape) * sigma.float()
            logits = model.decode(z, y).double().flatten(1)
            pixels = x.double().flatten(1)
            log_px = pixels * F.logsigmoid(logits) + (1 - pixels) * F.logsigmoid(-logits)
            kl = kl_divergence(Normal(mu.double(), sigma), Normal(0.0, 1.0)).sum(1)
            mean_image = torch.sigmoid(model.decode(mu, y).double().flatten(1))
            totals["recon_bce"] += float(-log_px.sum())
            totals["kl"] += float(kl.sum())
            totals["mse"] += float((mean_image - pixels).pow(2).sum()) / pixels.shape[1]
    model.train(was_training)
    totals["neg_elbo"] = totals["recon_bce"] + totals["kl"]
    return {"n": len(images), **{k: v / len(images) for k, v in totals.items()}}
