"""Datasets: registered by name or given as a path, their readers, downloads and splits."""

from __future__ import annotations

from vaelab.data.datasets import (
    DatasetContent,
    DatasetSpec,
    Splits,
    dataset_registry,
    find_dataset,
    is_registered,
    load_splits,
    read_dataset,
)

__all__ = ["DatasetContent", "DatasetSpec", "Splits", "dataset_registry", "find_dataset",
           "is_registered", "load_splits", "read_dataset"]
