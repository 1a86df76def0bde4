"""The digit classifier: it learns, saves and loads exactly, is cached, and reaches its accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.evaluation.classifier import (
    accuracy,
    cached_classifier,
    classifier_filename,
    default_epochs,
    load_classifier,
    save_classifier,
    train_classifier,
)


def _test_split(dataset: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    from vaelab.data.datasets import load_arrays

    arrays = load_arrays(dataset, data_dir)
    images = torch.from_numpy(arrays["test_images"]).unsqueeze(1).float() / 255
    return images, torch.from_numpy(arrays["test_labels"]).long()


def test_trains_saves_loads_and_caches(tiny_dataset: str, tiny_dataset_dir: Path,
                                       tmp_path: Path) -> None:
    data_dir = str(tiny_dataset_dir)
    clf = train_classifier(tiny_dataset, data_dir, epochs=3)
    images, labels = _test_split(tiny_dataset, data_dir)
    assert clf.info.test_accuracy == accuracy(clf.model, images, labels)
    assert clf.info.test_accuracy >= 0.9  # each digit is a bar at its own height
    assert (clf.info.n_train, clf.info.n_test, clf.info.epochs) == (600, 100, 3)

    path = tmp_path / "c.safetensors"
    save_classifier(path, clf)
    again = load_classifier(path)
    assert torch.equal(clf.probabilities(images), again.probabilities(images))
    assert again.info == clf.info
    assert path.with_suffix(".json").is_file()

    cache = tmp_path / "cache"
    first, where, trained = cached_classifier(tiny_dataset, cache, data_dir)
    assert trained and where == cache / classifier_filename(tiny_dataset)
    assert first.info.epochs == default_epochs(600)
    stamp = where.stat().st_mtime_ns
    second, _, trained_again = cached_classifier(tiny_dataset, cache, data_dir)
    assert not trained_again and where.stat().st_mtime_ns == stamp
    assert torch.equal(first.probabilities(images), second.probabilities(images))
    labels_pred, confidence = second.predict(images)
    assert labels_pred.shape == confidence.shape == (100,)
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_damaged_or_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(VaelabError, match="missing"):
        load_classifier(tmp_path / "absent.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(VaelabError, match="not a readable vaelab classifier"):
        load_classifier(bad)


def test_default_epochs() -> None:
    assert default_epochs(60_000) == 4
    assert default_epochs(10_000) == 6


@pytest.mark.slow
def test_mnist_sample_accuracy(request: pytest.FixtureRequest) -> None:
    """Cached across test sessions in pytest's cache folder, so it trains once."""
    cache = Path(request.config.cache.mkdir("vaelab-classifiers"))
    clf, _, _ = cached_classifier("mnist-sample", cache)
    images, labels = _test_split("mnist-sample", None)
    assert accuracy(clf.model, images, labels) == clf.info.test_accuracy
    assert clf.info.test_accuracy >= 0.96


@pytest.mark.slow
def test_full_mnist_accuracy_at_least_99_percent(real_mnist: str,
                                                 request: pytest.FixtureRequest) -> None:
    cache = Path(request.config.cache.mkdir("vaelab-classifiers"))
    clf, _, _ = cached_classifier("mnist", cache, real_mnist)
    images, labels = _test_split("mnist", real_mnist)
    measured = accuracy(clf.model, images, labels)
    assert measured == clf.info.test_accuracy
    assert measured >= 0.99
