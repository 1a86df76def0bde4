"""The data a trained run is measured on: what it was trained on, or what the user names.

Commands that read a run's data (``evaluate``, ``reconstruct``, ``explore``) ask here. The
dataset is the one the run's config names (a registered name, or the absolute path it was
trained from), or ``dataset`` when the user names another, read with the run's own settings
(validation size, ``resize``). What was read is compared with the run's ``provenance.json``
(``vaelab.data.provenance``), and the difference, if any, is returned for the caller to
word or to refuse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vaelab.config import TrainConfig
from vaelab.data.datasets import Splits, dataset_registry, is_registered, load_splits
from vaelab.data.provenance import DataChange, compare
from vaelab.data.user import dataset_path
from vaelab.errors import VaelabError
from vaelab.models import VAE
from vaelab.runs.layout import RunDir

__all__ = ["RunData", "run_data"]


@dataclass
class RunData:
    """A run's data, read and checked, and how it differs from what the run recorded."""

    splits: Splits
    change: DataChange | None  # None: the content the run was trained on (or no record)

    def refuse_meaningless(self, split: str) -> None:
        """Raise when scores on ``split`` of changed data would mean nothing."""
        reason = self.change.meaningless(split) if self.change else None
        if reason:
            raise VaelabError(reason)

    def check_model(self, model: VAE) -> None:
        """A conditional model needs the labels of the images it encodes."""
        if model.conditional and not self.splits.labelled:
            raise VaelabError(f"the {model.config.name} model is conditioned on labels, and "
                              f"{self.splits.name} has none; name labelled data with --dataset")


def run_data(run_dir: str | os.PathLike[str], config: TrainConfig, dataset: str | None = None,
             data_dir: str | None = None) -> RunData:
    """Read the data of the run in ``run_dir`` (trained with ``config``), or ``dataset``."""
    run = RunDir(run_dir)
    recorded = run.read_provenance().get("data")
    source = dataset or config.dataset
    if dataset is None and not is_registered(source):
        try:
            dataset_path(source, dataset_registry.names())
        except VaelabError:
            raise VaelabError(f"the data {run} was trained on, {source}, is no longer there; "
                              "pass --dataset PATH to say where it is now") from None
    splits = load_splits(source, data_dir or config.data_dir, config.val_size,
                         resize=config.resize)
    return RunData(splits, compare(recorded, splits.provenance, named=dataset is not None))
