"""Shared fixtures: tiny IDX datasets built on the fly, and the real data when available."""

from __future__ import annotations

import gzip
import os
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
# The scripts under benchmarks/ import their siblings, as they do when run from there.
sys.path.insert(0, str(REPO / "benchmarks"))
# pytest's cache folder for trained classifiers (.pytest_cache/d/<this>); .ci/run empties it.
CLASSIFIER_CACHE = "vaelab-classifiers"
# Real MNIST lives where $VAELAB_DATA points (CI sets it to ../shared/data).
REAL_DATA = os.environ.get("VAELAB_DATA")
# The original study run to the end by vaelab 0.1.0 (its README says how), kept beside the
# checkout in ../shared, as CI has it; read-only there.
OLD_STUDY = REPO.parent / "shared" / "studies" / "seed-100ep"

# Property tests: "ci" gives every parser 1,000 generated files; "dev" (the default elsewhere)
# fewer, for a quick local run. VAELAB_HYPOTHESIS_PROFILE chooses one; .ci/run sets "ci".
settings.register_profile("ci", max_examples=1000)
settings.register_profile("dev", max_examples=150)
settings.load_profile(os.environ.get("VAELAB_HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Print the seed of the random test order (pytest-randomly) even under ``-q``.

    pytest-randomly puts ``Using --randomly-seed=N`` in the header, which ``-q`` (the README's
    and CI's command) hides; without the seed, an order that fails cannot be run again.
    """
    config = session.config
    seed = getattr(config.option, "randomly_seed", None)  # absent under -p no:randomly
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if seed is None or reporter is None or hasattr(config, "workerinput"):
        return
    if not reporter.showheader or reporter.no_header:
        reporter.write_line(f"Using --randomly-seed={seed}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding a ``slow`` or ``browser`` test go first, each tier in
    pytest-randomly's order.

    Each xdist worker takes a whole file (``--dist loadfile``) in collection order, so a long
    file that came up last would run on alone while the other workers sat idle; dispatched
    first, the long files overlap, and the short ones fill in round them. The stable sort
    keeps the shuffle: which long file starts first, and every test's place within its file.
    """
    long_files = {item.path for item in items
                  if item.get_closest_marker("slow") or item.get_closest_marker("browser")}
    items.sort(key=lambda item: item.path not in long_files)


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


@pytest.fixture(scope="session")
def real_mnist() -> str:
    """The data root holding full MNIST; skips when $VAELAB_DATA does not hold it."""
    if not REAL_DATA or not (Path(REAL_DATA) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("full MNIST not available (set VAELAB_DATA to a folder holding mnist/)")
    return REAL_DATA


@pytest.fixture(scope="session")
def old_study(tmp_path_factory: pytest.TempPathFactory, real_mnist: str) -> Path:
    """A writable copy of ``OLD_STUDY``, one per worker (its runs read full MNIST); skips when
    it is absent."""
    import shutil

    if not (OLD_STUDY / "study.json").is_file():
        pytest.skip(f"{OLD_STUDY} not available (the study vaelab 0.1.0 wrote)")
    copy = tmp_path_factory.mktemp("old-study") / "seed-100ep"
    shutil.copytree(OLD_STUDY, copy, copy_function=shutil.copyfile)
    for folder in (copy, *(p for p in copy.iterdir() if p.is_dir())):
        folder.chmod(0o755)
    return copy


@pytest.fixture(scope="session")
def classifier_cache(request: pytest.FixtureRequest) -> Path:
    """Where the tests keep trained classifiers across sessions: pytest's cache folder.

    Each file is named by what trained it (``classifier_filename``: the data's content id and
    a hash of the training code and settings), so a session never gets a classifier an older
    version of the code trained; ``cached_classifier`` locks it, so workers asking at once
    train it once; and CI empties this folder first (``.ci/run``), so every CI run trains it
    afresh.
    """
    return Path(request.config.cache.mkdir(CLASSIFIER_CACHE))


def sample_classifier(cache: Path) -> tuple[Any, Path]:
    """mnist-sample's classifier from ``cache`` (trained there first when missing), its file."""
    from vaelab.data import load_splits
    from vaelab.evaluation.classifier import cached_classifier

    classifier, path, _ = cached_classifier(load_splits("mnist-sample"), cache)
    return classifier, path


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


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside, as they were afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small matrices on a shared machine: one thread avoids oversubscription stalls."""
    with torch_threads(1):
        yield


# A run whose validation loss falls and then rises: ten training digits, memorised over 30
# one-step epochs while 190 others validate, so its best checkpoint is not its last.
OVERFITTING_DIGITS = 200  # mnist-sample's first training images; all but ten validate
OVERFITTING_FLAGS = ["--val-size", "190", "--epochs", "30", "--batch-size", "64", "--lr", "0.01",
                     "--device", "cpu"]
OVERFITTING_Z_DIM = 4


def write_sample_digits(path: Path, n_train: int, n_test: int = 100) -> Path:
    """The first ``n_train`` training and ``n_test`` test images of mnist-sample, unlabelled, as
    an .npz dataset at ``path``."""
    from vaelab.data import load_splits

    splits = load_splits("mnist-sample", None, 0)
    np.savez(path, x_train=splits.train_images[:n_train], x_test=splits.test_images[:n_test])
    return path


@pytest.fixture(scope="session")
def overfitting_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vaelab train` on ten digits until it overfits (OVERFITTING_FLAGS): best != last."""
    from vaelab.cli.main import main

    data = write_sample_digits(tmp_path_factory.mktemp("data") / "digits.npz",
                               OVERFITTING_DIGITS)
    run = tmp_path_factory.mktemp("runs") / "overfitting"
    with torch_threads(1):  # small matrices on a shared machine, as ``one_thread``
        assert main(["train", "--dataset", str(data), "--z-dim", str(OVERFITTING_Z_DIM),
                     *OVERFITTING_FLAGS, "--out", str(run)]) == 0
    return run


def epoch_records(run: Path) -> list[dict[str, Any]]:
    """The epoch records of ``run``'s metrics.jsonl, in order."""
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def lowest_epoch(records: Sequence[dict[str, Any]], key: str) -> int:
    """The epoch (counted from 1) whose record holds the lowest ``key``."""
    return int(min(records, key=lambda record: record[key])["epoch"])


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


# --- models of a user's own (plugins) ---------------------------------------------------------

@pytest.fixture
def plugin_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The model registry and the loaded plugins as they were before the test, afterwards."""
    import sys

    from vaelab.models import plugins
    from vaelab.models.registry import model_registry

    monkeypatch.setattr(model_registry, "_entries", dict(model_registry._entries))
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.setattr(plugins, "_warned", set())
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        if name.startswith(("_vaelab_plugin_", "vaelab_test_")):
            del sys.modules[name]


def write_plugin(folder: Path, name: str, source: str) -> Path:
    """A plugin file ``name`` in ``folder`` holding ``source`` (dedented)."""
    import textwrap

    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def write_plugin_package(root: Path, module: str, source: str, dist: str = "vaelab-test-pkg",
                         version: str = "1.2.3", entry: str = "minimal") -> Path:
    """An installed package on folder ``root``: ``module``/vae.py holding ``source``, and a real
    ``.dist-info`` whose entry_points.txt declares ``module.vae`` in the group vaelab.models.
    Put ``root`` on sys.path (or PYTHONPATH) and importlib.metadata finds it."""
    package = root / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write_plugin(package, "vae.py", source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[vaelab.models]\n{entry} = {module}.vae\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text("")
    return root


def reference_elbo(model: Any, images: Any, labels: Any = None, binarize: str = "none",
                   seed: int = 0, block: int = 1000) -> dict[str, float]:
    """What ``vaelab.evaluation.elbo.evaluate`` must report, computed without vaelab's loss code.

    The Bernoulli log-likelihood is written out, the KL comes from ``torch.distributions`` and
    the pixel error from the decoded posterior mean. As evaluation promises: one posterior draw
    per image from ``torch.manual_seed(seed)``, images taken in batches of ``block``, and every
    1,000 images binarised with their own seed (the first one's index + 1), whatever the batch.
    Means per image; ``mse`` per pixel.
    """
    import torch
    import torch.nn.functional as F
    from torch.distributions import Normal, kl_divergence

    totals = {"neg_elbo": 0.0, "recon_bce": 0.0, "kl": 0.0, "mse": 0.0}
    was_training = model.training
    model.eval()
    grey = images.unsqueeze(1).float().div(255)
    scored = grey
    if binarize == "static":
        scored = (grey > 0.5).float()
    elif binarize == "dynamic":
        scored = torch.cat([torch.bernoulli(grey[at:at + 1000],
                                            generator=torch.Generator().manual_seed(at + 1))
                            for at in range(0, len(grey), 1000)])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(images), block):
            x = scored[start:start + block]
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
