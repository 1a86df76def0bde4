"""Checkpoints: safetensors + JSON only, written atomically, enough to rebuild or resume.

A run directory holds ``config.json`` (the resolved training config), ``last.safetensors``
(model, optimizer and RNG state for resuming) and ``best.safetensors`` (the weights with the
lowest validation loss). Every safetensors file carries its model config in its JSON header,
so one file is enough to rebuild its model. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.fsutil import atomic_path
from vaelab.models import VAE, ModelConfig, create_model

__all__ = [
    "BEST",
    "CONFIG",
    "FORMAT",
    "LAST",
    "LoadedRun",
    "TrainState",
    "load_run",
    "read_checkpoint",
    "save_checkpoint",
]

FORMAT = "vaelab-checkpoint-1"
CONFIG, LAST, BEST = "config.json", "last.safetensors", "best.safetensors"


@dataclass
class TrainState:
    """Where a run stands; saved as JSON in the checkpoint header."""

    epoch: int = 0  # epoch in progress (0-based); equals config.epochs when finished
    step: int = 0  # optimisation steps done within that epoch
    global_step: int = 0  # optimisation steps done in total
    best_val: float | None = None  # lowest validation loss so far
    best_epoch: int | None = None  # epoch (1-based) that reached it
    history: list[dict[str, Any]] = field(default_factory=list)  # one metrics record per epoch
    running: dict[str, float] = field(default_factory=dict)  # partial sums of the epoch in progress

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        return cls(**json.loads(text))


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (for safetensors) and plain values (JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, entry in state["state"].items():
        plain["state"][str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain["state"][str(index)][key] = value
    return tensors, plain


def _optimizer_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in plain["state"].items()}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    path: str | os.PathLike[str],
    model: VAE,
    config: TrainConfig,
    state: TrainState | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Write model weights (+ optimizer and RNG state when given) atomically to ``path``."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "model_config": json.dumps(model.config.to_dict()),
    }
    if state is not None:
        metadata["state"] = state.to_json()
    if optimizer is not None:
        optim_tensors, optim_plain = _optimizer_tensors(optimizer.state_dict())
        tensors.update(optim_tensors)
        metadata["optimizer"] = json.dumps(optim_plain)
        tensors["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


@dataclass
class Checkpoint:
    """A checkpoint file read back: plain tensors and parsed metadata, nothing executed."""

    path: Path
    config: TrainConfig
    model_config: ModelConfig
    model_state: dict[str, torch.Tensor]
    state: TrainState | None
    optimizer_state: dict[str, Any] | None
    rng: dict[str, torch.Tensor]


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint file; any problem is a one-line VaelabError."""
    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"checkpoint {path} is missing; train first (vaelab train --out DIR)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise VaelabError(f"{path} is not a readable safetensors checkpoint ({exc}); "
                          "it may be corrupt or not a vaelab checkpoint") from None
    if metadata.get("format") != FORMAT:
        raise VaelabError(f"{path} is not a vaelab checkpoint (format {metadata.get('format')!r})")
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]), source=str(path))
        model_config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
        state = TrainState.from_json(metadata["state"]) if "state" in metadata else None
        optim_plain = json.loads(metadata["optimizer"]) if "optimizer" in metadata else None
    except (KeyError, TypeError, ValueError) as exc:
        raise VaelabError(f"{path} has a damaged header ({exc}); use another checkpoint") from None
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}}
    for name, tensor in tensors.items():
        prefix, _, rest = name.partition(".")
        if prefix not in groups:
            raise VaelabError(f"{path} holds an unexpected tensor {name!r}")
        groups[prefix][rest if prefix != "optim" else name] = tensor
    optimizer_state = _optimizer_state(groups["optim"], optim_plain) if optim_plain else None
    return Checkpoint(path, config, model_config, groups["model"], state, optimizer_state, groups["rng"])


def build_model(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> VAE:
    """A model of the checkpoint's architecture with its weights, or a clear error."""
    model = create_model(checkpoint.model_config)
    expected = model.state_dict()
    got = checkpoint.model_state
    missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = [k for k in expected if k in got and got[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
                  if unexpected else f"shape of {wrong[0]} is {tuple(got[wrong[0]].shape)}, "
                  f"expected {tuple(expected[wrong[0]].shape)}")
        raise VaelabError(
            f"{checkpoint.path}: weights do not match the {checkpoint.model_config.name!r} "
            f"architecture with z_dim={checkpoint.model_config.z_dim} ({detail}); "
            "the checkpoint belongs to another model"
        )
    model.load_state_dict(got)
    return model.to(device)


def _check_run_config(folder: Path, checkpoint: Checkpoint) -> None:
    """config.json and the checkpoint must describe the same architecture."""
    config_path = folder / CONFIG
    if not config_path.is_file():
        return
    try:
        saved = json.loads(config_path.read_text())
    except (OSError, ValueError):
        raise VaelabError(f"{config_path} is not valid JSON; restore it or retrain") from None
    ours = checkpoint.model_config
    if saved.get("model") != ours.name or saved.get("z_dim") != ours.z_dim:
        raise VaelabError(
            f"{checkpoint.path} holds a {ours.name!r} model with z_dim={ours.z_dim} but "
            f"{config_path} describes {saved.get('model')!r} with z_dim={saved.get('z_dim')}; "
            "the checkpoint belongs to another run"
        )


@dataclass
class LoadedRun:
    """A trained model rebuilt from a run directory."""

    run_dir: Path
    model: VAE
    config: TrainConfig
    checkpoint: Checkpoint


def load_run(run_dir: str | os.PathLike[str], which: str = "best",
             device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the ``best`` (or ``last``) model of a run directory, in eval mode."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise VaelabError(f"run directory {folder} does not exist; train one with "
                          f"`vaelab train --out {folder}`")
    names = {"best": BEST, "last": LAST}
    if which not in names:
        raise VaelabError(f"unknown checkpoint {which!r}; choose best or last")
    path = folder / names[which]
    if not path.is_file() and which == "best" and (folder / LAST).is_file():
        path = folder / LAST
    if not path.is_file():
        raise VaelabError(f"{folder} has no {names[which]} (nor {LAST}); it is not a finished "
                          "vaelab run directory")
    checkpoint = read_checkpoint(path)
    _check_run_config(folder, checkpoint)
    model = build_model(checkpoint, device)
    model.eval()
    return LoadedRun(folder, model, checkpoint.config, checkpoint)
