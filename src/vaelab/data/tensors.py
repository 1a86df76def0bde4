"""A dataset's splits resident on the training device, as uint8 images and int64 labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaelab.data.datasets import Splits, load_splits

__all__ = ["DeviceSplits", "device_splits", "to_device"]


@dataclass(frozen=True)
class DeviceSplits:
    """uint8 images (N, 28, 28) and int64 labels (N,) of each split, on one device.

    Unlabelled data has every label tensor None.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor | None
    val_images: torch.Tensor
    val_labels: torch.Tensor | None
    test_images: torch.Tensor
    test_labels: torch.Tensor | None

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None

    def picture_split(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images and labels a run's pictures show: validation, or test when there is none."""
        if len(self.val_images):
            return self.val_images, self.val_labels
        return self.test_images, self.test_labels


def _labels(labels: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if labels is None else torch.from_numpy(labels).long().to(device)


def to_device(splits: Splits, device: torch.device) -> DeviceSplits:
    """Move checked splits to ``device``."""
    return DeviceSplits(
        train_images=torch.from_numpy(splits.train_images).to(device),
        train_labels=_labels(splits.train_labels, device),
        val_images=torch.from_numpy(splits.val_images).to(device),
        val_labels=_labels(splits.val_labels, device),
        test_images=torch.from_numpy(splits.test_images).to(device),
        test_labels=_labels(splits.test_labels, device),
    )


def device_splits(name: str, data_dir: str | None, val_size: int | None,
                  device: torch.device, resize: bool = False) -> DeviceSplits:
    """Load a dataset (every file checked) and move its splits to ``device``."""
    return to_device(load_splits(name, data_dir, val_size, resize), device)
