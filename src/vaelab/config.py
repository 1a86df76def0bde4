"""Configuration as dataclasses: the model's, the training run's, presets and TOML files.

Each setting is declared once, with its help text and its valid range (``vaelab.settings``):
the fields a model needs (z_dim, iw_samples, ...) live in ``ModelSettings``, which both
``ModelConfig`` (what rebuilds a model) and ``TrainConfig`` (what defines a run) extend.

Precedence of a training run's settings, lowest first: field defaults, ``--preset``,
``--config FILE.toml``, flags. The resolved config is written as ``config.json`` in the run
directory. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError
from vaelab.settings import (
    SEED,
    Rule,
    add_setting_arguments,
    check_settings,
    given_settings,
    setting,
)
from vaelab.trackers.base import DEFAULT_EXPERIMENT

__all__ = [
    "PRESETS",
    "ModelConfig",
    "ModelSettings",
    "TrainConfig",
    "add_config_arguments",
    "config_from_args",
    "load_toml",
    "resolve_config",
]

_POSITIVE = Rule("positive")
_NON_NEGATIVE = Rule("non-negative")


@dataclass
class ModelSettings:
    """The settings a model is built from, shared by ``ModelConfig`` and ``TrainConfig``."""

    z_dim: int = setting(20, "number of latent units", Rule("positive", upper=4096))
    iw_samples: int = setting(
        1, "importance samples per input in the training objective (iwae, hvae)",
        Rule("positive", upper=10_000))
    n_pseudo_inputs: int = setting(
        500, "pseudo-inputs of the VampPrior (vamp)", Rule("positive", upper=100_000))

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class ModelConfig(ModelSettings):
    """What is needed to rebuild a model; saved as JSON beside its weights."""

    name: str = "mlp"  # architecture, a key of the model registry
    image_shape: tuple[int, int, int] = (1, 28, 28)  # channels, height, width
    num_classes: int = 10  # label count, used by conditional models

    def __post_init__(self) -> None:
        self.image_shape = tuple(self.image_shape)  # type: ignore[assignment]  # JSON gives a list
        super().__post_init__()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Known keys only: files of earlier versions carry keys that are no longer used."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def n_pixels(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


@dataclass
class TrainConfig(ModelSettings):
    """Everything that defines a training run."""

    model: str = setting("mlp", "architecture from the model registry (see `vaelab models`)")
    beta: float = setting(1.0, "weight of the KL term (1 = the ELBO; >1 a beta-VAE)",
                          _NON_NEGATIVE)
    dataset: str = setting("mnist-sample", "dataset name (see `vaelab data list`)")
    data_dir: str | None = setting(
        None, "folder holding <dataset>/ files (default $VAELAB_DATA or ~/.cache/vaelab)")
    val_size: int | None = setting(
        None, "validation images carved from the training set (default 5000 or 10%)",
        Rule("non-negative", upper=10_000_000))
    epochs: int = setting(10, "passes over the training set", Rule("positive", upper=1_000_000))
    batch_size: int = setting(128, "images per optimisation step",
                              Rule("positive", upper=1_000_000))
    lr: float = setting(1e-3, "Adam learning rate", _POSITIVE)
    seed: int = setting(1, "seed for initialisation, shuffling and sampling", SEED)
    device: str = setting("auto", "cpu, cuda, mps or auto (cuda, then mps, then cpu)",
                          choices=("auto", "cpu", "cuda", "mps"))
    out: str = setting("runs/latest", "run directory for checkpoints, metrics and pictures")
    grad_clip: float | None = setting(
        None, "clip the gradient norm to this value (off by default)", _POSITIVE)
    kl_warmup: int = setting(
        0, "epochs over which the KL weight rises linearly from 0 to beta",
        Rule("non-negative", upper=1_000_000))
    binarize: str = setting(
        "none", "pixel binarisation: none, dynamic (resampled each batch) or static (> 0.5; "
        "not the static binarised MNIST of papers, one Bernoulli draw per image)",
        choices=("none", "dynamic", "static"))
    precision: str = setting(
        "fp32", "fp32, bf16 autocast for matrix products, or auto (bf16 where the device runs "
        "it natively and faster: CUDA with bf16, CPUs with AVX-512-bf16 or AMX; else fp32)",
        choices=("fp32", "bf16", "auto"))
    compile: bool = setting(False, "torch.compile the training step (pays off for long runs)")
    checkpoint_every: int = setting(
        0, "also write the resumable checkpoint every N steps (0: once per epoch)",
        Rule("non-negative", upper=10**9))
    trackers: tuple[str, ...] = setting(
        (), "experiment trackers to log to: tensorboard, mlflow (comma-separated)", flag=False)
    experiment: str = setting(DEFAULT_EXPERIMENT, "MLflow experiment the trackers log to")
    image_every: int = setting(1, "send picture grids to the trackers every N epochs",
                               Rule("positive", upper=1_000_000))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise VaelabError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; see `vaelab train --help`"
            )
        values = dict(data)
        if isinstance(values.get("trackers"), list):  # JSON has no tuples
            values["trackers"] = tuple(values["trackers"])
        return cls(**values)

    def model_config(self) -> ModelConfig:
        """The ModelConfig this run builds."""
        shared = {f.name: getattr(self, f.name) for f in fields(ModelSettings)}
        return ModelConfig(name=self.model, **shared)


# Named starting points; a preset sets fields, and TOML or flags still override it.
PRESETS: dict[str, dict[str, Any]] = {
    # The original study: its network, z_dim 20, batch 32, 100 epochs, Adam 1e-3.
    "seed": {"model": "seed", "z_dim": 20, "batch_size": 32, "epochs": 100, "lr": 1e-3},
    # The pytorch/examples VAE: 784-400-20-400-784, batch 128, 10 epochs, Adam 1e-3.
    "mlp": {"model": "mlp", "z_dim": 20, "batch_size": 128, "epochs": 10, "lr": 1e-3},
}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (top level or a [train] table); keys use underscores or dashes."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise VaelabError(f"config file {path} does not exist; check the --config path") from None
    except tomllib.TOMLDecodeError as exc:
        raise VaelabError(f"config file {path} is not valid TOML: {exc}") from None
    data = data.get("train", data)
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig setting, plus --preset and --config."""
    add_setting_arguments(parser, TrainConfig, exclude)
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=argparse.SUPPRESS,
        help="start from a named configuration: "
        + "; ".join(
            f"{k}: {', '.join(f'{a}={b}' for a, b in v.items())}" for k, v in PRESETS.items()
        ),
    )
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE.toml",
        help="read settings from a TOML file; flags override it",
    )


def resolve_config(
    flags: dict[str, Any], preset: str | None = None, toml_path: str | None = None
) -> TrainConfig:
    """Apply defaults < preset < TOML < flags and validate the result."""
    merged: dict[str, Any] = {}
    toml_values = load_toml(toml_path) if toml_path else {}
    preset = preset or toml_values.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise VaelabError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        merged.update(PRESETS[preset])
    toml_values.pop("preset", None)
    merged.update(toml_values)
    merged.update(flags)
    return TrainConfig.from_dict(merged, source=toml_path or "flags")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args)
    return resolve_config(given_settings(args, TrainConfig), values.get("preset"),
                          values.get("config"))
