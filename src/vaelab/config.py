"""Training configuration as a dataclass, with TOML files, presets and generated CLI flags.

Precedence, lowest first: field defaults, ``--preset``, ``--config FILE.toml``, flags.
The resolved config is written as ``config.json`` in the run directory.
"""

from __future__ import annotations

import argparse
import math
import tomllib
import types
import typing
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError

__all__ = [
    "PRESETS",
    "TrainConfig",
    "add_config_arguments",
    "config_from_args",
    "load_toml",
    "resolve_config",
]


def _opt(default: Any, help: str, check: str | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field that carries its CLI help and its validation rule."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    model: str = _opt("mlp", "architecture from the model registry (see `vaelab models`)")
    z_dim: int = _opt(20, "number of latent units", "positive")
    beta: float = _opt(1.0, "weight of the KL term (1 = the ELBO; >1 a beta-VAE)", "non-negative")
    dataset: str = _opt("mnist-sample", "dataset name (see `vaelab data list`)")
    data_dir: str | None = _opt(
        None, "folder holding <dataset>/ files (default $VAELAB_DATA or ~/.cache/vaelab)"
    )
    val_size: int | None = _opt(
        None, "validation images carved from the training set (default 5000 or 10%)", "non-negative"
    )
    epochs: int = _opt(10, "passes over the training set", "positive")
    batch_size: int = _opt(128, "images per optimisation step", "positive")
    lr: float = _opt(1e-3, "Adam learning rate", "positive")
    seed: int = _opt(1, "seed for initialisation, shuffling and sampling", "non-negative")
    device: str = _opt(
        "auto",
        "cpu, cuda, mps or auto (cuda, then mps, then cpu)",
        choices=("auto", "cpu", "cuda", "mps"),
    )
    out: str = _opt("runs/latest", "run directory for checkpoints, metrics and pictures")
    grad_clip: float | None = _opt(
        None, "clip the gradient norm to this value (off by default)", "positive"
    )
    kl_warmup: int = _opt(
        0, "epochs over which the KL weight rises linearly from 0 to beta", "non-negative"
    )
    binarize: str = _opt(
        "none",
        "pixel binarisation: none, dynamic (resampled each batch) or static (> 0.5)",
        choices=("none", "dynamic", "static"),
    )
    iw_samples: int = _opt(
        1, "importance samples per input in the training objective (iwae)", "positive"
    )
    precision: str = _opt(
        "fp32", "fp32, or bf16 autocast for matrix products", choices=("fp32", "bf16")
    )
    compile: bool = _opt(False, "torch.compile the training step (pays off for long runs)")
    checkpoint_every: int = _opt(
        0, "also write the resumable checkpoint every N steps (0: once per epoch)", "non-negative"
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            _validate(f, getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise VaelabError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; see `vaelab train --help`"
            )
        return cls(**data)

    def model_config(self) -> Any:
        """The ModelConfig this run builds (imports torch-free config class lazily)."""
        from vaelab.models.base import ModelConfig

        return ModelConfig(
            name=self.model, z_dim=self.z_dim, beta=self.beta, iw_samples=self.iw_samples
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_CHECKS: dict[str, tuple[Any, str]] = {
    "positive": (lambda v: v > 0, "a positive number"),
    "non-negative": (lambda v: v >= 0, "zero or a positive number"),
}
# Lowest accepted integer per check, and upper limits per field: a typo fails here, naming the
# accepted range, rather than deep inside torch (a seed above 2**63 overflows its generator).
_INT_LOW = {"positive": 1, "non-negative": 0}
_UPPER: dict[str, int] = {
    "z_dim": 4096,
    "seed": 2**32 - 1,
    "batch_size": 1_000_000,
    "epochs": 1_000_000,
    "iw_samples": 10_000,
    "val_size": 10_000_000,
    "kl_warmup": 1_000_000,
    "checkpoint_every": 10**9,
}


def _range_text(name: str, check: str, expected: type) -> str:
    upper = _UPPER.get(name)
    sign = "a positive " if check == "positive" else "an "
    if expected is int:
        low = _INT_LOW[check]
        return (
            f"{sign}integer from {low} to {upper}" if upper else f"{sign}integer of at least {low}"
        )
    return "a positive number (greater than 0)" if check == "positive" else "a number of 0 or more"


def _validate(f: Field[Any], value: Any) -> None:
    if value is None:
        return
    expected = _base_type(f)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise VaelabError(f"{_flag(f.name)} must be {expected.__name__}, got {value!r}")
    if expected is float and not math.isfinite(value):
        raise VaelabError(f"{_flag(f.name)} must be a finite number, got {value!r}")
    check, choices = f.metadata.get("check"), f.metadata.get("choices")
    if check:
        ok, _ = _CHECKS[check]
        upper = _UPPER.get(f.name)
        if not ok(value) or (upper is not None and value > upper):
            wanted = _range_text(f.name, check, expected)
            raise VaelabError(f"{_flag(f.name)} must be {wanted}, got {value!r}")
    if choices and value not in choices:
        raise VaelabError(f"{_flag(f.name)} must be one of {', '.join(choices)}, got {value!r}")


def _base_type(f: Field[Any]) -> type:
    hint = typing.get_type_hints(TrainConfig)[f.name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint  # type: ignore[no-any-return]


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
    """One flag per TrainConfig field; flags default to "not given" so lower layers show through."""
    for f in fields(TrainConfig):
        if f.name in exclude:
            continue
        kind = _base_type(f)
        # argparse %-formats help strings, so a literal "%" must be doubled.
        shown = "" if f.default is None else f" (default: {f.default})"  # None: help says it
        help_text = f"{f.metadata['help']}{shown}".replace("%", "%%")
        if kind is bool:
            parser.add_argument(
                _flag(f.name),
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                _flag(f.name),
                type=_parser_for(kind, f.name),
                default=argparse.SUPPRESS,
                metavar=f.name.upper(),
                help=help_text,
            )
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


def _parser_for(kind: type, name: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{_flag(name)} expects {kind.__name__}, got {text!r}"
            ) from None

    parse.__name__ = kind.__name__
    return parse


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
    names = set(TrainConfig.__dataclass_fields__)
    flags = {k: v for k, v in values.items() if k in names}
    return resolve_config(flags, values.get("preset"), values.get("config"))
