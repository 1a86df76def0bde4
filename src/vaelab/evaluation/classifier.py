"""A small CNN classifier that labels decoded images, and may abstain; trained once per dataset.

Two strided 5x5 convolutions (16 and 32 channels, ReLU), a 128-unit hidden layer and one logit
per class plus one for "none of these" (the reject class), trained with Adam and a one-cycle
learning-rate schedule on the dataset's whole training split. The reject class learns from
blends of two training images of different classes and from noise
(``vaelab.evaluation.probes.training_negatives``), so that an image a person would not call any
class can be refused instead of being forced into one. The mechanism was chosen by measured
abstention rates (``benchmarks/abstention.py``, docs/sample-quality.md).

Weights are stored as safetensors with a JSON sidecar that records how the classifier was
trained, its measured test accuracy and its cache key: a hash of the training code, the
settings and the data's content id, so a cached classifier is always one this code would train.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vaelab.errors import VaelabError
from vaelab.runs.atomic import atomic_path, atomic_write_json

if TYPE_CHECKING:
    from vaelab.data.datasets import Splits

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_SETTINGS",
    "HIDDEN_UNITS",
    "UNCLEAR",
    "Classifier",
    "ClassifierInfo",
    "ClassifierSettings",
    "DigitCNN",
    "Outputs",
    "accuracy",
    "cached_classifier",
    "classifier_cache_dir",
    "classifier_filename",
    "classifier_key",
    "default_epochs",
    "load_classifier",
    "save_classifier",
    "train_classifier",
]

log = logging.getLogger(__name__)

FORMAT = "vaelab-classifier-1"
ARCHITECTURE = "digitcnn-v4"  # v4: the reject class; v3 files (no reject class) still load
HIDDEN_UNITS = 128  # width of the penultimate layer, the feature space of sample quality
UNCLEAR = -1  # the label of an image the classifier refuses (or gives too little probability)
# The files whose code decides what a trained classifier is: they key the cache.
_KEYED_SOURCES = ("classifier.py", "probes.py")


class DigitCNN(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> (B, n_classes [+ 1]) logits; the last is "none of these"
    when ``reject``.

    Strided convolutions instead of pooling: on a CPU they train several times faster for the
    same accuracy, which keeps the first study on a laptop quick.
    """

    def __init__(self, n_classes: int = 10, reject: bool = True) -> None:
        super().__init__()
        self.n_classes, self.reject = n_classes, reject
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),  # 16 x 14 x 14
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),  # 32 x 7 x 7
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, HIDDEN_UNITS), nn.ReLU(),
                                  nn.Linear(HIDDEN_UNITS, n_classes + int(reject)))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, HIDDEN_UNITS): the penultimate layer, after its ReLU."""
        # channels_last is the faster convolution layout on CPUs.
        x = self.features(x.contiguous(memory_format=torch.channels_last))
        return self.head[:-1](x)  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[-1](self.hidden(x))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClassifierSettings:
    """How a classifier is trained; every field is part of its cache key."""

    epochs: int | None = None  # passes over the training split; None: ``default_epochs``
    batch_size: int = 64  # real images per step
    lr: float = 2e-3  # peak learning rate of the one-cycle schedule
    seed: int = 0  # initialisation, shuffling and negatives
    negatives: float = 0.25  # "none of these" images per real image in each step; 0: no reject


DEFAULT_SETTINGS = ClassifierSettings()


@dataclass
class ClassifierInfo:
    """How a classifier was trained and how well it does; saved as JSON beside its weights."""

    dataset: str  # dataset whose training split it learned
    epochs: int  # passes over the training split
    seed: int  # initialisation and shuffling seed
    n_train: int  # training images
    n_test: int  # test images it was scored on
    test_accuracy: float  # fraction of test images classified correctly (argmax over classes)
    seconds: float  # training wall time
    class_names: tuple[str, ...]  # label -> readable name
    architecture: str = ARCHITECTURE
    format: str = FORMAT
    reject: bool = False  # has a "none of these" output (v3 files do not)
    settings: dict[str, Any] = field(default_factory=dict)  # ClassifierSettings as trained
    key: str = ""  # classifier_key of the code and settings that trained it ("" before v4)


@dataclass(frozen=True)
class Outputs:
    """What one pass of the classifier gives for a set of images."""

    labels: np.ndarray  # (N,) int64: the most probable class, UNCLEAR where "none of these" wins
    confidence: np.ndarray  # (N,) the probability of that output
    features: np.ndarray  # (N, HIDDEN_UNITS) float64: the penultimate layer


@dataclass
class Classifier:
    """A trained DigitCNN with its record; ``predict`` labels float images."""

    model: DigitCNN
    info: ClassifierInfo

    @torch.no_grad()
    def _passes(self, images: torch.Tensor, batch_size: int
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(hidden features, softmax over every output) of each batch, on the CPU."""
        self.model.eval()
        device = next(self.model.parameters()).device
        x = images if images.dim() == 4 else images.unsqueeze(1)
        for i in range(0, len(x), batch_size):
            hidden = self.model.hidden(x[i:i + batch_size].to(device, torch.float32))
            yield hidden.cpu(), torch.softmax(self.model.head[-1](hidden), 1).cpu()

    def probabilities(self, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Probabilities (N, n_outputs) of float images (N, 28, 28) or (N, 1, 28, 28); with a
        reject class its probability is the last column."""
        chunks = [probs for _, probs in self._passes(images, batch_size)]
        width = self.model.n_classes + int(self.model.reject)
        return torch.cat(chunks) if chunks else torch.zeros(0, width)

    def outputs(self, images: torch.Tensor, batch_size: int = 2000) -> Outputs:
        """Labels, confidence and features of float images in [0, 1], from one pass."""
        hidden, probs = [], []
        for h, p in self._passes(images, batch_size):
            hidden.append(h)
            probs.append(p)
        if not hidden:
            return Outputs(np.zeros(0, np.int64), np.zeros(0, np.float32),
                           np.zeros((0, HIDDEN_UNITS)))
        confidence, labels = torch.cat(probs).max(1)
        labels_np = labels.numpy().astype(np.int64)
        if self.model.reject:
            labels_np[labels_np == self.model.n_classes] = UNCLEAR
        return Outputs(labels_np, confidence.numpy(), torch.cat(hidden).double().numpy())

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels (N,) and the probability given to each, as numpy arrays; UNCLEAR
        where the classifier says "none of these"."""
        found = self.outputs(images)
        return found.labels, found.confidence

    def features(self, images: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
        """Penultimate-layer activations (N, HIDDEN_UNITS) as float64, of float images in [0, 1].

        The digit analogue of the Inception pool features that FID is computed on (Heusel et
        al. 2017): the hidden layer after its ReLU, where the classes have become separable
        but an image's style is still represented.
        """
        chunks = [h for h, _ in self._passes(images, batch_size)]
        if not chunks:
            return np.zeros((0, HIDDEN_UNITS))
        return torch.cat(chunks).double().numpy()


def _to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(images).to(device).unsqueeze(1).float().div_(255.0)


@torch.no_grad()
def accuracy(model: DigitCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images whose most probable *class* is their label (the reject output
    aside: a refused test image counts by its best class)."""
    model.eval()
    correct = sum(int((model(images[i:i + 2000])[:, :model.n_classes].argmax(1)
                       == labels[i:i + 2000]).sum())
                  for i in range(0, len(images), 2000))
    return correct / max(len(images), 1)


def default_epochs(n_train: int) -> int:
    """At least 6 passes and 60,000 images seen: 6 epochs of MNIST and of the sample.

    With its blurred, dimmed positives and its "none of these" images the classifier needs 6
    passes over MNIST to reach 99 % test accuracy (4 gave 98.79 %, 6 gave 99.02 %, measured).
    """
    return max(6, math.ceil(60_000 / max(n_train, 1)))


def _source_digest() -> str:
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for name in _KEYED_SOURCES:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def classifier_key(settings: ClassifierSettings = DEFAULT_SETTINGS) -> str:
    """12 hex digits naming what trains a classifier: this code and these settings.

    Any change to the training code (this module, the negatives in ``probes``) or to a setting
    gives another key, so a cache never hands back a classifier that other code trained.
    """
    text = json.dumps({"code": _source_digest(), "architecture": ARCHITECTURE,
                       "settings": asdict(settings)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _training_images(splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled training image of the dataset: the training and validation splits."""
    if not splits.labelled or splits.train_labels is None or splits.val_labels is None:
        raise VaelabError(f"{splits.name} has no labels, so no classifier can be trained on it")
    return (np.concatenate([splits.train_images, splits.val_images]),
            np.concatenate([splits.train_labels, splits.val_labels]))


def train_classifier(
    splits: Splits,
    settings: ClassifierSettings = DEFAULT_SETTINGS,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, int, float], None] | None = None,
) -> Classifier:
    """Train a DigitCNN on every training image of ``splits``; scored on its test split.

    With ``settings.negatives`` > 0 each step adds that many "none of these" images per real
    image (two batch images of different classes at once, and noise) under the extra label,
    and the real images are blurred and dimmed at random as those are
    (``vaelab.evaluation.probes``), so that only their content tells the two apart.
    """
    from vaelab.evaluation.probes import training_negatives, training_positives

    device = torch.device(device)
    images, labels = _training_images(splits)
    assert splits.test_labels is not None
    train_x, train_y = _to_float(images, device), torch.from_numpy(labels).long().to(device)
    test_x = _to_float(splits.test_images, device)
    test_y = torch.from_numpy(splits.test_labels).long().to(device)
    n_classes = len(splits.class_names) or int(labels.max()) + 1
    epochs = settings.epochs or default_epochs(len(train_x))
    batch_size, seed = settings.batch_size, settings.seed
    reject = settings.negatives > 0
    n_negative = round(settings.negatives * batch_size)
    torch.manual_seed(seed)
    model = DigitCNN(n_classes, reject).to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = nn.CrossEntropyLoss()
    negatives_rng = torch.Generator().manual_seed(seed + 1)
    started = time.perf_counter()
    steps = math.ceil(len(train_x) / batch_size)
    # One-cycle schedule (Smith & Topin 2019): warm up to ``lr``, then anneal to ~0; the
    # low-rate steps at the end buy the last few tenths of a percent of accuracy.
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr,
                                                   total_steps=epochs * steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed + epoch))
        order = order.to(device)
        total = torch.zeros((), device=device)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            x, y = train_x[index], train_y[index]
            if reject:
                extra = training_negatives(x, y, n_negative, negatives_rng)
                x = torch.cat([training_positives(x, negatives_rng), extra])
                y = torch.cat([y, torch.full((len(extra),), n_classes, device=device)])
            loss = loss_fn(model(x), y)
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
    info = ClassifierInfo(dataset=splits.name, epochs=epochs, seed=seed, n_train=len(train_x),
                          n_test=len(test_x), test_accuracy=accuracy(model, test_x, test_y),
                          seconds=seconds, class_names=tuple(splits.class_names),
                          reject=reject, settings=asdict(settings),
                          key=classifier_key(settings))
    model.eval()
    return Classifier(model, info)


def classifier_filename(content_id: str, settings: ClassifierSettings = DEFAULT_SETTINGS) -> str:
    """The cache file of a dataset's classifier: one per data content, code and settings."""
    return f"{content_id}-{ARCHITECTURE}-{classifier_key(settings)}.safetensors"


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
        model = DigitCNN(len(info.class_names), info.reject)
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


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock file: a second process asking for the same classifier waits here
    while the first trains it, then loads what it saved."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not a POSIX system: no lock
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise VaelabError(f"cannot create the classifier cache {path.parent}: {exc.strerror}; "
                          "pass --classifier-dir DIR") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_classifier(
    splits: Splits,
    cache_dir: str | Path,
    settings: ClassifierSettings = DEFAULT_SETTINGS,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, int, float], None] | None = None,
    on_train: Callable[[], None] | None = None,
) -> tuple[Classifier, Path, bool]:
    """The cached classifier of ``splits`` (by its content id), trained and saved first when
    absent (``on_train`` is told just before). Two processes asking at once train it once:
    the second waits for the first.

    Returns the classifier, its file and whether it was trained now.
    """
    path = Path(cache_dir) / classifier_filename(splits.content_id, settings)
    with _exclusive(path):
        if path.is_file():
            return load_classifier(path, device), path, False
        if on_train is not None:
            on_train()
        classifier = train_classifier(splits, settings, device=device, on_epoch=on_epoch)
        save_classifier(path, classifier)
    return classifier, path, True
