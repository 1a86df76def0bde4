"""A dataset's splits resident on the training device, as uint8 images and int64 labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelab.data.datasets import load_splits

__all__ = ["DeviceSplits", "device_splits"]


@dataclass(frozen=True)
class DeviceSplits:
    """uint8 images (N, 28, 28) and int64 labels (N,) of each split, on one device."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def picture_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels a run's pictures show: validation, or test when there is none."""
        if len(self.val_images):
            return self.val_images, self.val_labels
        return self.test_images, self.test_labels


def device_splits(name: str, data_dir: str | None, val_size: int | None,
                  device: torch.device) -> DeviceSplits:
    """Load a dataset (checksums verified) and move its splits to ``device``."""
    splits = load_splits(name, data_dir, val_size)
    tensors: dict[str, torch.Tensor] = {}
    for which in ("train", "val", "test"):
        images, labels = splits.split(which)
        tensors[f"{which}_images"] = torch.from_numpy(images).to(device)
        tensors[f"{which}_labels"] = torch.from_numpy(labels).long().to(device)
    return DeviceSplits(**tensors)
