"""A small CNN digit classifier that labels decoded images; trained once per dataset and cached.

Two strided 5x5 convolutions (16 and 32 channels, ReLU), a 128-unit hidden layer and 10
logits, trained with Adam and a one-cycle learning-rate schedule on the dataset's whole
training split, the data resident as tensors. Weights are stored as safetensors with a JSON
sidecar that records how the classifier was trained and its measured test accuracy.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vaelab.errors import VaelabError
from vaelab.runs.atomic import atomic_path, atomic_write_json

if TYPE_CHECKING:
    from vaelab.data.content import DatasetContent

__all__ = [
    "Classifier",
    "ClassifierInfo",
    "DigitCNN",
    "cached_classifier",
    "classifier_cache_dir",
    "classifier_filename",
    "default_epochs",
    "load_classifier",
    "save_classifier",
    "train_classifier",
]

log = logging.getLogger(__name__)

FORMAT = "vaelab-classifier-1"
ARCHITECTURE = "digitcnn-v3"
HIDDEN_UNITS = 128  # width of the penultimate layer, the feature space of sample quality


class DigitCNN(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> (B, n_classes) logits.

    Strided convolutions instead of pooling: on a CPU they train several times faster for the
    same accuracy, which keeps the first study on a laptop quick.
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),  # 16 x 14 x 14
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),  # 32 x 7 x 7
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, HIDDEN_UNITS), nn.ReLU(),
                                  nn.Linear(HIDDEN_UNITS, n_classes))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, HIDDEN_UNITS): the penultimate layer, after its ReLU."""
        # channels_last is the faster convolution layout on CPUs.
        x = self.features(x.contiguous(memory_format=torch.channels_last))
        return self.head[:-1](x)  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[-1](self.hidden(x))  # type: ignore[no-any-return]


@dataclass
class ClassifierInfo:
    """How a classifier was trained and how well it does; saved as JSON beside its weights."""

    dataset: str  # dataset whose training split it learned
    epochs: int  # passes over the training split
    seed: int  # initialisation and shuffling seed
    n_train: int  # training images
    n_test: int  # test images it was scored on
    test_accuracy: float  # fraction of test images classified correctly
    seconds: float  # training wall time
    class_names: tuple[str, ...]  # label -> readable name
    architecture: str = ARCHITECTURE
    format: str = FORMAT


@dataclass
class Classifier:
    """A trained DigitCNN with its record; ``predict`` labels float images."""

    model: DigitCNN
    info: ClassifierInfo

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Class probabilities (N, n_classes) of float images (N, 28, 28) or (N, 1, 28, 28)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        x = images if images.dim() == 4 else images.unsqueeze(1)
        chunks = [torch.softmax(self.model(x[i:i + batch_size].to(device, torch.float32)), 1)
                  for i in range(0, len(x), batch_size)]
        return torch.cat(chunks).cpu() if chunks else torch.zeros(0, 10)

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels (N,) and the probability given to each, as numpy arrays."""
        probs = self.probabilities(images)
        confidence, labels = probs.max(1)
        return labels.numpy(), confidence.numpy()

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
        """Penultimate-layer activations (N, HIDDEN_UNITS) as float64, of float images in [0, 1].

        The digit analogue of the Inception pool features that FID is computed on (Heusel et
        al. 2017): the hidden layer after its ReLU, where the classes have become separable
        but a digit's style is still represented.
        """
        self.model.eval()
        device = next(self.model.parameters()).device
        x = images if images.dim() == 4 else images.unsqueeze(1)
        chunks = [self.model.hidden(x[i:i + batch_size].to(device, torch.float32)).cpu()
                  for i in range(0, len(x), batch_size)]
        if not chunks:
            return np.zeros((0, HIDDEN_UNITS))
        return torch.cat(chunks).double().numpy()


def _to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(images).to(device).unsqueeze(1).float().div_(255.0)


@torch.no_grad()
def accuracy(model: DigitCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(images[i:i + 2000]).argmax(1) == labels[i:i + 2000]).sum())
                  for i in range(0, len(images), 2000))
    return correct / max(len(images), 1)


def default_epochs(n_train: int) -> int:
    """At least 4 passes and 60,000 images seen: 4 epochs of MNIST, 6 of the sample."""
    return max(4, math.ceil(60_000 / max(n_train, 1)))


def train_classifier(
    dataset: str,
    data_dir: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, int, float], None] | None = None,
    resize: bool = False,
    content: DatasetContent | None = None,
) -> Classifier:
    """Train a DigitCNN on every training image of ``dataset``; scored on its test split.

    ``epochs`` defaults to ``default_epochs`` of the training-set size; ``content`` is the
    dataset already read (else it is read here, with ``resize``).
    """
    from vaelab.data.datasets import read_dataset

    device = torch.device(device)
    content = content or read_dataset(dataset, data_dir, resize=resize)
    _require_labels(content)
    assert content.train_labels is not None and content.test_labels is not None
    train_x = _to_float(content.train_images, device)
    train_y = torch.from_numpy(content.train_labels).long().to(device)
    test_x = _to_float(content.test_images, device)
    test_y = torch.from_numpy(content.test_labels).long().to(device)
    epochs = epochs or default_epochs(len(train_x))
    torch.manual_seed(seed)
    model = DigitCNN(len(content.class_names))
    model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    steps = math.ceil(len(train_x) / batch_size)
    # One-cycle schedule (Smith & Topin 2019): warm up to ``lr``, then anneal to ~0; the
    # low-rate steps at the end buy the last few tenths of a percent of accuracy.
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed + epoch))
        order = order.to(device)
        total = torch.zeros((), device=device)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            loss = loss_fn(model(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(index)
        mean_loss = float(total) / len(train_x)
        log.info("classifier epoch %d/%d: loss %.4f", epoch + 1, epochs, mean_loss)
        if on_epoch:
            on_epoch(epoch + 1, epochs, mean_loss)
    seconds = time.perf_counter() - started
    info = ClassifierInfo(dataset=content.name, epochs=epochs, seed=seed, n_train=len(train_x),
                          n_test=len(test_x), test_accuracy=accuracy(model, test_x, test_y),
                          seconds=seconds, class_names=content.class_names)
    model.eval()
    return Classifier(model, info)


def _require_labels(content: DatasetContent) -> None:
    if not content.labelled or content.test_labels is None:
        raise VaelabError(f"{content.name} has no labels, and the classifier learns its classes "
                          "from them; the measures built on it (--fid, the study's class maps) "
                          "need labelled data")


def classifier_filename(content_id: str, seed: int = 0) -> str:
    """The cache file of a dataset's classifier: one per dataset content (``Splits.content_id``:
    a registered name, or a path's name and content hash), architecture and seed."""
    return f"{content_id}-{ARCHITECTURE}-s{seed}.safetensors"


def save_classifier(path: str | Path, classifier: Classifier) -> None:
    """Weights as safetensors (the record in its header) and the record as a .json sidecar."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.model.state_dict().items()}
    record = asdict(classifier.info)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "info": json.dumps(record)})
    atomic_write_json(path.with_suffix(".json"), record)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """Read a saved classifier; a damaged or foreign file is a one-line VaelabError."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"classifier {path} is missing; `vaelab study` trains and caches it")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata: dict[str, Any] = fh.metadata() or {}
        state = load_file(str(path))
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        record = json.loads(metadata["info"])
        record["class_names"] = tuple(record["class_names"])
        info = ClassifierInfo(**record)
        model = DigitCNN(len(info.class_names))
        model.load_state_dict(state)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise VaelabError(f"{path} is not a readable vaelab classifier ({exc}); delete it so "
                          "that `vaelab study` trains a new one") from None
    # The layout it was trained in, so a loaded classifier computes exactly what it did.
    model.to(device, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
    return Classifier(model, info)


def classifier_cache_dir(data_dir: str | os.PathLike[str] | None = None,
                         override: str | os.PathLike[str] | None = None) -> Path:
    """``override`` (--classifier-dir), else ``<data root>/classifiers``, else
    ``~/.cache/vaelab/classifiers``.

    The last is for a read-only data root (a shared or system dataset folder).
    """
    if override:
        return Path(override)
    from vaelab.data.datasets import default_data_root

    root = default_data_root(data_dir)
    cache = root / "classifiers"
    if cache.is_dir() or (root.is_dir() and os.access(root, os.W_OK)):
        return cache
    return Path.home() / ".cache" / "vaelab" / "classifiers"


def cached_classifier(
    dataset: str,
    cache_dir: str | Path,
    data_dir: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, int, float], None] | None = None,
    resize: bool = False,
    on_train: Callable[[], None] | None = None,
) -> tuple[Classifier, Path, bool]:
    """The cached classifier of ``dataset`` (a registered name or a path), trained and saved
    first when absent (``on_train`` is told just before).

    Returns the classifier, its file and whether it was trained now. A path's cache file is
    named by its content, so changed data gets a classifier of its own.
    """
    from vaelab.data.datasets import is_registered, read_dataset

    content = None if is_registered(dataset) else read_dataset(dataset, data_dir, resize=resize)
    if content is not None:
        _require_labels(content)
    path = Path(cache_dir) / classifier_filename(content.content_id if content else dataset,
                                                 seed)
    if path.is_file():
        return load_classifier(path, device), path, False
    if on_train is not None:
        on_train()
    classifier = train_classifier(dataset, data_dir, seed=seed, device=device, on_epoch=on_epoch,
                                  resize=resize, content=content)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"cannot create the classifier cache {path.parent}: {exc.strerror}; "
                          "pass --classifier-dir DIR") from None
    save_classifier(path, classifier)
    return classifier, path, True
