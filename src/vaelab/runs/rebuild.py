"""A trained model rebuilt from a checkpoint or a run directory, with every check on the way.

``vaelab.runs.checkpoint`` reads the file; this module turns it into a model: the architecture
is built on the meta device first, so a checkpoint whose config claims an enormous model is
refused by its shapes before anything is allocated, and an optimizer state that cannot resume
the model is refused with one line.

A model from a plugin is built only when that plugin was loaded (``--plugin``) or installed: a
checkpoint that names a model nobody registered is refused with a line naming the plugin it
records, and nothing it names is imported. A plugin model is run once on a few images after
loading, so a plugin that changed since training and no longer keeps the contract is one line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.models import VAE, create_model, model_registry
from vaelab.models.base import eval_mode
from vaelab.models.contract import check_behaviour, is_builtin
from vaelab.models.plugins import require_model
from vaelab.runs.checkpoint import Checkpoint, read_checkpoint
from vaelab.runs.layout import RunDir

__all__ = ["LoadedRun", "build_model", "load_run"]

_ADAM_FLAGS = {"amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused",
               "decoupled_weight_decay"}  # booleans (or None) in Adam's parameter group
_CHECK_IMAGES = 4  # images a plugin model is run on after loading


def build_model(checkpoint: Checkpoint, device: str | torch.device = "cpu",
                recorded_origin: dict[str, object] | None = None) -> VAE:
    """A model of the checkpoint's architecture with its weights, or a clear error.

    The architecture is first built on the meta device (no memory), so a config claiming an
    enormous model is refused by comparing shapes before anything is allocated.
    ``recorded_origin`` is where the run says its model came from, when the checkpoint's
    header does not say (checkpoints record it since vaelab 0.2).
    """
    name = checkpoint.model_config.name
    require_model(name, checkpoint.model_origin or recorded_origin, str(checkpoint.path))
    builtin = is_builtin(model_registry.get(name))
    try:
        with torch.device("meta"):
            skeleton = create_model(checkpoint.model_config)
    except VaelabError as exc:
        why = "; it was written by another vaelab version or another tool" if builtin else ""
        raise VaelabError(f"{checkpoint.path}: {exc}{why}") from None
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError) as exc:
        raise VaelabError(f"{checkpoint.path}: its model config cannot be built ({exc}); "
                          "use another checkpoint") from None
    expected = skeleton.state_dict()
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
    odd = [k for k in expected if got[k].dtype != expected[k].dtype]
    if odd:
        raise VaelabError(f"{checkpoint.path}: tensor {odd[0]} has dtype {got[odd[0]].dtype}, "
                          f"expected {expected[odd[0]].dtype}; use another checkpoint")
    if checkpoint.optimizer_state is not None:
        _check_optimizer(checkpoint, [p.shape for p in skeleton.parameters()])
    model = create_model(checkpoint.model_config)
    model.load_state_dict(got)
    model = model.to(device)
    if not builtin:
        _check_loaded(model, checkpoint)
    return model


def _check_loaded(model: VAE, checkpoint: Checkpoint) -> None:
    """A plugin model, run on a few random images: today's plugin code must still fit."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((_CHECK_IMAGES, *model.config.image_shape), generator=generator).to(device)
    y = torch.zeros(_CHECK_IMAGES, dtype=torch.long, device=device)
    try:
        with eval_mode(model):
            check_behaviour(model, x, y, gradients=False)
    except VaelabError as exc:
        raise VaelabError(f"{checkpoint.path}: its model {model.config.name!r} does not keep "
                          f"vaelab's model contract with today's plugin code: {exc}") from None


def _check_optimizer(checkpoint: Checkpoint, shapes: list[torch.Size]) -> None:
    """The optimizer state must fit the model: one Adam group over every parameter."""
    state = checkpoint.optimizer_state or {}
    problem = None
    groups = state.get("param_groups")
    listed = [i for g in groups for i in g["params"]] if isinstance(groups, list) and all(
        isinstance(g, dict) and isinstance(g.get("params"), list)
        and all(type(i) is int for i in g["params"]) for g in groups) else None
    if listed is None or sorted(listed) != list(range(len(shapes))):
        problem = "its parameter groups do not cover the model's parameters"
    else:
        for group in groups or []:
            numbers = [group.get(k) for k in ("lr", "eps", "weight_decay")]
            betas = group.get("betas")
            flags = [v for k, v in group.items() if k in _ADAM_FLAGS]
            if not all(isinstance(v, int | float) and 0 <= v < math.inf for v in numbers) or not (
                    isinstance(betas, list | tuple) and len(betas) == 2
                    and all(isinstance(b, int | float) and 0 <= b < 1 for b in betas)) or not all(
                    v is None or isinstance(v, bool) for v in flags):
                problem = "its lr, betas, eps, weight_decay or switches are malformed"
    for index, entry in state.get("state", {}).items():
        if problem:
            break
        if not 0 <= index < len(shapes):
            problem = f"it holds state for parameter {index} of {len(shapes)}"
            break
        for key, value in entry.items():
            if key == "step":  # a count: one finite, non-negative number
                number = value.item() if torch.is_tensor(value) and value.numel() == 1 else value
                ok = isinstance(number, int | float) and 0 <= number < math.inf
            else:
                ok = torch.is_tensor(value) and value.shape == shapes[index]
            if not ok:
                problem = f"its {key} for parameter {index} does not fit the model"
                break
    if problem:
        raise VaelabError(f"{checkpoint.path}: the optimizer state cannot resume this model "
                          f"({problem}); use another checkpoint")


def _check_run_config(run: RunDir, checkpoint: Checkpoint) -> None:
    """config.json and the checkpoint must describe the same architecture."""
    if not run.config.is_file():
        return
    saved = run.read_config()
    ours = checkpoint.model_config
    if saved.get("model") != ours.name or saved.get("z_dim") != ours.z_dim:
        raise VaelabError(
            f"{checkpoint.path} holds a {ours.name!r} model with z_dim={ours.z_dim} but "
            f"{run.config} describes {saved.get('model')!r} with z_dim={saved.get('z_dim')}; "
            "the checkpoint belongs to another run"
        )


def _recorded_origin(run: RunDir) -> dict[str, object] | None:
    """provenance.json's word on the model's origin; an unreadable file only loses the hint."""
    try:
        origin = run.read_provenance().get("model")
    except VaelabError:
        return None
    return origin if isinstance(origin, dict) else None


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
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise VaelabError(f"run directory {run} does not exist; train one with "
                          f"`vaelab train --out {run}`")
    path = run.checkpoint(which)
    if not path.is_file():
        raise VaelabError(f"{run} has no {path.name} (nor {run.last.name}); it is not a "
                          "finished vaelab run directory")
    checkpoint = read_checkpoint(path)
    _check_run_config(run, checkpoint)
    model = build_model(checkpoint, device, _recorded_origin(run))
    model.eval()
    return LoadedRun(run.path, model, checkpoint.config, checkpoint)
