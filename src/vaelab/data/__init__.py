"""Datasets: the IDX reader, the dataset registry, downloads and the validation split."""

from __future__ import annotations

from vaelab.data.datasets import DatasetSpec, Splits, dataset_registry, find_dataset, load_splits

__all__ = ["DatasetSpec", "Splits", "dataset_registry", "find_dataset", "load_splits"]
