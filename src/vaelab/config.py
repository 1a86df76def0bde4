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
from vaelab.lr_schedules import LR_SCHEDULES, check_schedule
from vaelab.recipes import RECIPES
from vaelab.settings import (
    SEED,
    Rule,
    SettingError,
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
        1, "samples per input in the training objective: K of the importance-weighted bound "
        "(iwae, hvae, burda2), or the posterior draws whose ELBO terms are averaged (the fully "
        "connected VAEs: vae, seed, mlp, vamp)", Rule("positive", upper=10_000))
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
    dataset: str = setting(
        "mnist-sample", "dataset name (see `vaelab data list`) or path: a folder of IDX files "
        "or of images (a subfolder per class), an .npz or an .npy (see docs/data.md)")
    data_dir: str | None = setting(
        None, "folder holding <dataset>/ files (default $VAELAB_DATA or ~/.cache/vaelab)")
    resize: bool = setting(
        False, "convert images of a dataset path that are not 28 x 28 grey (other sizes, "
        "colour) to 28 x 28 grey: luma, fitted with Lanczos filtering, centred on black")
    val_size: int | None = setting(
        None, "validation images carved from the training set (default 5000 or 10%)",
        Rule("non-negative", upper=10_000_000))
    epochs: int = setting(10, "passes over the training set", Rule("positive", upper=1_000_000))
    batch_size: int = setting(128, "images per optimisation step",
                              Rule("positive", upper=1_000_000))
    lr: float = setting(1e-3, "Adam learning rate (where a schedule starts)", _POSITIVE)
    lr_schedule: str = setting(
        "constant", "learning-rate schedule: " + "; ".join(
            f"{name}: {LR_SCHEDULES.get(name).summary}" for name in LR_SCHEDULES.names()),
        choices=tuple(LR_SCHEDULES.names()))
    lr_warmup: int = setting(0, "cosine: epochs of linear warm-up before the decay",
                             Rule("non-negative", upper=1_000_000))
    lr_min: float = setting(0.0, "cosine: the rate reached at the last step; plateau: the "
                            "lowest rate it cuts to", _NON_NEGATIVE)
    lr_gamma: float = setting(0.1, "step and plateau: the factor each cut multiplies the rate by",
                              Rule("positive", upper=1.0, below_upper=True))
    lr_step_every: int = setting(0, "step: epochs between cuts (required by that schedule)",
                                 Rule("non-negative", upper=1_000_000))
    lr_patience: int = setting(10, "plateau: epochs without improvement before a cut",
                               Rule("non-negative", upper=1_000_000))
    adam_eps: float = setting(1e-8, "Adam's epsilon (Burda et al. 2015 use 1e-4)", _POSITIVE)
    adam_betas: tuple[float, ...] = setting(
        (0.9, 0.999), "Adam's beta1,beta2 (moment decay rates)",
        Rule("non-negative", upper=1.0, below_upper=True))
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
    recipe: str | None = setting(
        None, "start from a named recipe, a published protocol (see `vaelab recipes`); flags "
        "override its settings", choices=tuple(RECIPES.names()))

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.adam_betas) != 2:
            raise SettingError("adam_betas", "two numbers, beta1,beta2", list(self.adam_betas))
        check_schedule(self)

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
    except OSError as exc:  # a folder, or a file it may not read
        raise VaelabError(f"cannot read config file {path}: {exc.strerror}; check the --config "
                          "path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VaelabError(f"config file {path} is not valid TOML: {exc}") from None
    data = data.get("train", data)
    if not isinstance(data, dict):
        raise VaelabError(f"config file {path}: train must be a table of settings ([train]), "
                          f"not {type(data).__name__}")
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
    if "recipe" not in exclude:
        parser.add_argument(
            "--budget-epochs",
            type=Rule("positive", upper=1_000_000).parser("budget_epochs"),
            default=argparse.SUPPRESS,
            metavar="N",
            help="with --recipe: train N epochs instead of the recipe's, its schedule and "
            "warm-ups compressed to fit; the run is labelled compressed wherever its number "
            "is shown",
        )


def resolve_config(
    flags: dict[str, Any], preset: str | None = None, toml_path: str | None = None,
    budget_epochs: int | None = None,
) -> TrainConfig:
    """Apply defaults < preset or recipe < TOML < flags and validate the result.

    A recipe (``recipe`` among the flags or in the TOML file) is a named starting point like a
    preset; ``budget_epochs`` compresses it (``vaelab.recipes.recipe_settings``).
    """
    from vaelab.recipes import recipe_settings

    merged: dict[str, Any] = {}
    toml_values = load_toml(toml_path) if toml_path else {}
    preset = preset or toml_values.pop("preset", None)
    recipe = flags.get("recipe") or toml_values.get("recipe")
    if preset is not None and recipe is not None:
        raise VaelabError(f"--preset {preset} and --recipe {recipe} both set every setting; "
                          "give one of them")
    if preset is not None:
        if preset not in PRESETS:
            raise VaelabError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        merged.update(PRESETS[preset])
    if budget_epochs is not None and recipe is None:
        raise VaelabError("--budget-epochs compresses a recipe; give --recipe NAME (see "
                          "`vaelab recipes`), or set the length with --epochs")
    if budget_epochs is not None and "epochs" in {**toml_values, **flags}:
        raise VaelabError("--budget-epochs and --epochs both set the length; give one of them")
    if recipe is not None:
        if recipe not in RECIPES:
            raise VaelabError(f"--recipe: unknown recipe {recipe!r}; choose one of "
                              f"{', '.join(RECIPES.names())} (see `vaelab recipes`)")
        merged.update(recipe_settings(recipe, budget_epochs))
    toml_values.pop("preset", None)
    merged.update(toml_values)
    merged.update(flags)
    try:
        return TrainConfig.from_dict(merged, source=toml_path or "flags")
    except SettingError as exc:  # a value from the file: name the file and its key
        if exc.name in flags or exc.name not in toml_values:
            raise
        raise VaelabError(exc.file_message(str(toml_path))) from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args)
    return resolve_config(given_settings(args, TrainConfig), values.get("preset"),
                          values.get("config"), values.get("budget_epochs"))
