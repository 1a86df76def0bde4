"""The study's settings as a dataclass; the defaults are the original MNIST study.

A study is one training configuration (``train``, shared by every run) swept over ``z_dims``
and ``seeds``, plus the settings of its measurements. Each (z_dim, seed) trains in an ordinary
run directory: ``STUDY_DIR/z<d>`` for the first seed, ``STUDY_DIR/z<d>-seed<s>`` for the others.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vaelab.config import PRESETS, TrainConfig
from vaelab.errors import VaelabError
from vaelab.settings import Rule, SettingError, check_settings, setting

__all__ = ["QUICK", "STUDY_FILE", "STUDY_TRAIN", "StudyConfig", "load_study_config"]

STUDY_FILE = "study.json"
_FORMAT = 2  # study.json with a nested "train" table; format 1 held the training settings flat

# The original study's training: the seed preset (its network, z_dim 20, batch 32, 100 epochs,
# Adam 1e-3) on full MNIST. z_dim and out are set per run.
STUDY_TRAIN = TrainConfig(**{**PRESETS["seed"], "dataset": "mnist", "out": "runs/study"})

# `--quick`: every z_dim of the study, on the shipped sample set, for a few epochs.
QUICK: dict[str, Any] = {"dataset": "mnist-sample", "epochs": 10}

_POSITIVE_INT = Rule("positive", upper=1_000_000)


@dataclass
class StudyConfig:
    """Everything that defines a study; saved as ``STUDY_DIR/study.json``."""

    out: str = setting("runs/study", "study directory; each z_dim trains in STUDY_DIR/z<d>")
    train: TrainConfig = field(default_factory=lambda: replace(STUDY_TRAIN))  # every run's
    z_dims: tuple[int, ...] = setting((1, 2, 5, 10, 20), "latent sizes of the sweep",
                                      Rule("positive", upper=4096))
    seeds: int = setting(1, "seeds per z_dim: the runs' seeds are --seed, --seed + 1, ...; with "
                         "2 or more the report shows mean ± standard deviation",
                         Rule("positive", upper=100))
    traverse_range: tuple[float, ...] = setting((-3.0, 3.0), "z interval of the 1-D strip",
                                                flag=False)
    traverse_images: int = setting(25, "decoded images along the 1-D strip", _POSITIVE_INT,
                                   flag=False)
    map_points: int = setting(601, "z values classified for the 1-D digit map", _POSITIVE_INT,
                              flag=False)
    grid_size: int = setting(21, "the 2-D manifolds are grid_size x grid_size images (odd, so "
                             "z = 0 is on the grid)", Rule("positive", upper=101), flag=False)
    grid_range: float = setting(5.0, "the first 2-D manifold covers [-grid_range, grid_range]^2",
                                Rule("positive"), flag=False)
    quantiles: tuple[float, ...] = setting((0.05, 0.95), "prior quantiles of the quantile "
                                           "manifold", flag=False)
    prior_samples: int = setting(10_000, "prior draws decoded per z_dim for the sample-quality "
                                 "measures", _POSITIVE_INT)
    pr_k: int = setting(3, "neighbour rank k whose distance sets each ball of precision and "
                        "recall (Kynkäänniemi et al. 2019 use 3)", Rule("positive", upper=100))
    active_threshold: float = setting(0.01, "a unit is active when Cov_x(E_q[z_u | x]) exceeds "
                                      "this", Rule("positive"), flag=False)
    elbow_tolerances: tuple[float, ...] = setting(
        (0.025, 0.05, 0.1), "elbow rule tolerances, as shares of the sweep's range",
        Rule("positive", upper=1.0), flag=False)
    min_confidence: float = setting(
        0.5, "a decoding counts as a class only when the classifier does not refuse it and "
        "gives the class at least this probability; otherwise it is 'unclear'",
        Rule("non-negative", upper=1.0))
    classifier_dir: str | None = setting(
        None, "classifier cache (default <data root>/classifiers)")
    classifier_epochs: int | None = setting(
        None, "passes over the training images for the digit classifier the study trains "
        "(default: 6, or as many as 60,000 images seen take for a smaller dataset)",
        Rule("positive", upper=10_000))

    def __post_init__(self) -> None:
        check_settings(self)
        if not self.z_dims:
            raise SettingError("z_dims", "at least one latent size", list(self.z_dims))
        if len(set(self.z_dims)) != len(self.z_dims):
            raise SettingError("z_dims", "distinct latent sizes", list(self.z_dims))
        self.z_dims = tuple(sorted(self.z_dims))
        lo, hi = _pair("traverse_range", self.traverse_range)
        if not lo < hi:
            raise SettingError("traverse_range", "an interval with low < high", [lo, hi])
        q_lo, q_hi = _pair("quantiles", self.quantiles)
        if not 0 < q_lo < q_hi < 1:
            raise SettingError("quantiles", "two probabilities with 0 < low < high < 1",
                               [q_lo, q_hi])

    def seed_list(self) -> list[int]:
        """The seeds every z_dim is trained with."""
        return [self.train.seed + i for i in range(self.seeds)]

    def run_dir(self, z_dim: int, seed: int | None = None) -> Path:
        """The run directory of one (z_dim, seed); the first seed's is STUDY_DIR/z<d>."""
        if seed is None or seed == self.train.seed:
            return Path(self.out) / f"z{z_dim}"
        return Path(self.out) / f"z{z_dim}-seed{seed}"

    def run_configs(self) -> list[TrainConfig]:
        """One ordinary training config per (z_dim, seed), each writing its own run directory."""
        return [replace(self.train, z_dim=z, seed=s, out=str(self.run_dir(z, s)))
                for z in self.z_dims for s in self.seed_list()]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = _FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """A study from JSON or keyword settings; training settings may also be given flat."""
        values = dict(data)
        values.pop("format", None)
        train = values.pop("train", None) or {}
        # A flat key names a training setting unless the study has its own (out).
        train_names = set(TrainConfig.__dataclass_fields__) - {f.name for f in fields(cls)}
        train = {**STUDY_TRAIN.to_dict(), **train,
                 **{k: values.pop(k) for k in list(values) if k in train_names}}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise VaelabError(f"{STUDY_FILE}: unknown setting(s) {', '.join(unknown)}")
        for name in ("z_dims", "traverse_range", "quantiles", "elbow_tolerances"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(train=TrainConfig.from_dict(train, source=STUDY_FILE), **values)

    def with_overrides(self, train: dict[str, Any] | None = None,
                       **overrides: Any) -> StudyConfig:
        """A copy with some study settings and some training settings replaced."""
        new_train = replace(self.train, **(train or {}))
        return replace(self, train=new_train, **overrides)


def _pair(name: str, values: tuple[float, ...]) -> tuple[float, float]:
    if len(values) != 2:
        raise SettingError(name, "two numbers", list(values))
    return float(values[0]), float(values[1])


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
    if data.get("format", 1) == 1:
        # Format 1 held the training settings flat. Every setting that still exists keeps its
        # value (a 20 x 20 grid stays 20 x 20); those that no longer exist (its single
        # elbow_tolerance, now one of several) are dropped.
        kept = {f.name for f in fields(StudyConfig)} | set(TrainConfig.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in kept}
    data["out"] = str(study_dir)
    return StudyConfig.from_dict(data)
