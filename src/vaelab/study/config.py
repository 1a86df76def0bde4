"""The study's settings as a dataclass; the defaults are the original MNIST study."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError

__all__ = ["QUICK", "STUDY_FILE", "StudyConfig", "load_study_config"]

STUDY_FILE = "study.json"

# `--quick`: every z_dim of the study, on the shipped sample set, for a few epochs.
QUICK: dict[str, Any] = {"dataset": "mnist-sample", "epochs": 10}


@dataclass
class StudyConfig:
    """Everything that defines a study; saved as ``STUDY_DIR/study.json``."""

    out: str = "runs/study"  # study directory; each z_dim trains in out/z<d>
    z_dims: tuple[int, ...] = (1, 2, 5, 10, 20)  # latent sizes of the sweep
    model: str = "seed"  # architecture of every run (the study's network)
    dataset: str = "mnist"  # dataset name
    data_dir: str | None = None  # data root (default $VAELAB_DATA or ~/.cache/vaelab)
    epochs: int = 100  # epochs per z_dim
    batch_size: int = 32  # images per step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 1  # seed of every run (initialisation, shuffling, sampling)
    device: str = "auto"  # cpu, cuda, mps or auto
    traverse_range: tuple[float, float] = (-3.0, 3.0)  # z interval of the 1-D strip
    traverse_images: int = 25  # decoded images shown along the 1-D strip
    map_points: int = 601  # z values classified for the 1-D digit map
    grid_size: int = 20  # the 2-D manifold is grid_size x grid_size images
    grid_range: float = 5.0  # the 2-D manifold covers [-grid_range, grid_range]^2
    quantiles: tuple[float, float] = (0.05, 0.95)  # prior quantiles of the second manifold
    prior_samples: int = 10_000  # prior draws scored by the classifier per z_dim
    active_threshold: float = 0.01  # a unit is active when Cov_x(E_q[z_u | x]) exceeds this
    elbow_tolerance: float = 0.05  # see vaelab.study.elbow
    classifier_dir: str | None = None  # classifier cache (default <data root>/classifiers)

    def __post_init__(self) -> None:
        self.z_dims = tuple(int(z) for z in self.z_dims)
        self.traverse_range = (float(self.traverse_range[0]), float(self.traverse_range[1]))
        self.quantiles = (float(self.quantiles[0]), float(self.quantiles[1]))
        if not self.z_dims or any(z < 1 for z in self.z_dims):
            raise VaelabError(f"--z-dims must be positive integers, got {list(self.z_dims)}")
        if len(set(self.z_dims)) != len(self.z_dims):
            raise VaelabError(f"--z-dims lists a value twice: {list(self.z_dims)}")
        self.z_dims = tuple(sorted(self.z_dims))
        for name in ("epochs", "batch_size", "traverse_images", "map_points", "grid_size",
                     "prior_samples"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise VaelabError(f"{flag} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0 or not self.grid_range > 0:
            raise VaelabError("--lr and the grid range must be positive numbers")
        lo, hi = self.traverse_range
        if not lo < hi:
            raise VaelabError(f"the 1-D range must have low < high, got [{lo}, {hi}]")
        q_lo, q_hi = self.quantiles
        if not 0 < q_lo < q_hi < 1:
            raise VaelabError(f"quantiles must satisfy 0 < low < high < 1, got {q_lo}, {q_hi}")

    def run_dir(self, z_dim: int) -> Path:
        return Path(self.out) / f"z{z_dim}"

    def run_configs(self) -> list[TrainConfig]:
        """One ordinary training config per z_dim, each writing its own run directory."""
        return [TrainConfig(model=self.model, z_dim=z, dataset=self.dataset, data_dir=self.data_dir,
                            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                            seed=self.seed, device=self.device, out=str(self.run_dir(z)))
                for z in self.z_dims]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VaelabError(f"{STUDY_FILE}: unknown setting(s) {', '.join(unknown)}")
        return cls(**data)

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_study_config(study_dir: str | Path) -> StudyConfig:
    """The settings saved in a study directory (its ``out`` set to where it now lives)."""
    path = Path(study_dir) / STUDY_FILE
    if not path.is_file():
        raise VaelabError(f"{study_dir} is not a study directory (no {STUDY_FILE}); "
                          f"run `vaelab study --out {study_dir}` first")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VaelabError(f"{path} is not readable JSON ({exc}); re-run `vaelab study`") from None
    data["out"] = str(study_dir)
    return StudyConfig.from_dict(data)
