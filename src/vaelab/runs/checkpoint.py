"""Checkpoints: safetensors + JSON only, written atomically, enough to rebuild or resume.

``last.safetensors`` holds the model, optimizer and RNG state for resuming and
``best.safetensors`` the weights with the lowest validation loss (the file names belong to
``vaelab.runs.layout``). Every safetensors file carries its model config in its JSON header,
and where the model's code came from (``model_origin``: vaelab, or the plugin that supplies
it), so one file is enough to rebuild its model or to say which plugin it needs. Nothing is
ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.models import VAE, ModelConfig, model_registry
from vaelab.runs.atomic import atomic_write_bytes

__all__ = [
    "FORMAT",
    "Checkpoint",
    "TrainState",
    "checkpoint_bytes",
    "global_rng_state",
    "model_origin",
    "read_checkpoint",
    "read_header",
    "save_checkpoint",
]

FORMAT = "vaelab-checkpoint-1"

# The header is never trusted: these bound what a file may claim before anything is read.
_MAX_HEADER_BYTES = 16 << 20  # ours are a few KB (the epoch history is the bulk)
_MAX_FILE_BYTES = 8 << 30  # far above any vaelab model; a bigger file is not ours
_ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1}
_FLOAT_DTYPES = {torch.float64, torch.float32, torch.float16, torch.bfloat16}
_OPTIMIZER_KEYS = {"exp_avg", "exp_avg_sq", "step", "max_exp_avg_sq"}


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
    running_seconds: float = 0.0  # seconds the epoch in progress has taken so far

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        state = cls(**json.loads(text))
        state._check()
        return state

    def _check(self) -> None:
        counts = (self.epoch, self.step, self.global_step)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise ValueError("epoch, step and global_step must be non-negative integers")
        if self.best_val is not None and not isinstance(self.best_val, int | float):
            raise ValueError("best_val must be a number")
        if self.best_epoch is not None and not isinstance(self.best_epoch, int):
            raise ValueError("best_epoch must be an integer")
        if not isinstance(self.history, list) or not all(isinstance(r, dict) for r in self.history):
            raise ValueError("history must be a list of records")
        if not isinstance(self.running, dict) or (
                self.running and (set(self.running) != {"loss", "recon", "kl"} or not all(
                    isinstance(v, int | float) for v in self.running.values()))):
            raise ValueError("running must map loss, recon and kl to numbers")
        seconds = self.running_seconds
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not seconds >= 0:
            raise ValueError("running_seconds must be a non-negative number")


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (for safetensors) and plain values (JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    # A schedule's rate is a 0-dim tensor where the step is a CUDA graph; JSON keeps its value.
    groups = [{k: float(v) if torch.is_tensor(v) else v for k, v in group.items()}
              for group in state["param_groups"]]
    plain: dict[str, Any] = {"param_groups": groups, "state": {}}
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


def checkpoint_bytes(model: VAE, resume: bool = False) -> int:
    """Disk space a run needs for its checkpoints: ``last`` (weights + Adam's two moments),
    ``best`` (weights), and a temp copy of ``last`` while it is rewritten; resuming only
    needs the temp copy, the others exist already."""
    weights = int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))
    return 3 * weights + (0 if resume else 4 * weights) + (1 << 20)


def global_rng_state() -> dict[str, torch.Tensor]:
    """The states of torch's global CPU and (when in use) CUDA generators."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def model_origin(name: str) -> dict[str, str] | None:
    """Where the registered model ``name`` came from, as recorded (None: not registered)."""
    from vaelab.models.plugins import origin_of

    entry = model_registry.entries(discover=False).get(name)
    return origin_of(entry).to_dict() if entry is not None else None


def save_checkpoint(
    path: str | os.PathLike[str],
    model: VAE,
    config: TrainConfig,
    state: TrainState | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    rng: dict[str, torch.Tensor] | None = None,
    schedule: dict[str, Any] | None = None,
) -> None:
    """Write model weights (+ optimizer and RNG state when given) atomically to ``path``.

    ``rng`` is the random state to resume with ({"cpu": ..., "cuda": ...}); by default the
    global generators' states. ``schedule`` is the learning-rate schedule's state
    (``RunSchedule.state()``), kept as JSON beside the optimizer's.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "model_config": json.dumps(model.config.to_dict()),
    }
    origin = model_origin(model.config.name)
    if origin is not None:
        metadata["model_origin"] = json.dumps(origin)
    if state is not None:
        metadata["state"] = state.to_json()
    if optimizer is not None:
        optim_tensors, optim_plain = _optimizer_tensors(optimizer.state_dict())
        tensors.update(optim_tensors)
        metadata["optimizer"] = json.dumps(optim_plain)
        for name, value in (rng if rng is not None else global_rng_state()).items():
            tensors[f"rng.{name}"] = value.detach().cpu()
    if schedule is not None:
        metadata["schedule"] = json.dumps(schedule)
    # Serialised in memory and written by Python, so a full disk is an OSError that
    # atomic_write_bytes turns into a clear message, leaving the previous file intact.
    atomic_write_bytes(path, save(tensors, metadata=metadata))


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
    model_origin: dict[str, Any] | None = None  # where the model's code came from, as recorded
    schedule_state: dict[str, Any] | None = None  # the learning-rate schedule's, when it has one


def _recorded_origin(metadata: dict[str, str]) -> dict[str, Any] | None:
    """The header's model_origin; only ever read for messages, so a malformed one is None."""
    try:
        origin = json.loads(metadata.get("model_origin", "null"))
    except (ValueError, RecursionError):
        return None
    return origin if isinstance(origin, dict) else None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint file; any problem is a one-line VaelabError."""
    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"checkpoint {path} is missing; train first (vaelab train --out DIR)")
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size > _MAX_FILE_BYTES:
                raise VaelabError(f"{path} is larger than {_MAX_FILE_BYTES >> 30} GiB; "
                                  "it is not a vaelab checkpoint")
            raw = fh.read()
    except OSError as exc:
        raise VaelabError(f"cannot read {path}: {exc.strerror or exc}") from None
    metadata = _check_header(path, raw)
    try:
        tensors = load(raw)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise VaelabError(f"{path} is not a readable safetensors checkpoint ({exc}); "
                          "it may be corrupt or not a vaelab checkpoint") from None
    del raw
    if metadata.get("format") != FORMAT:
        raise VaelabError(f"{path} is not a vaelab checkpoint (format {metadata.get('format')!r})")
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]), source=str(path))
        model_config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
        state = TrainState.from_json(metadata["state"]) if "state" in metadata else None
        optim_plain = json.loads(metadata["optimizer"]) if "optimizer" in metadata else None
        schedule = json.loads(metadata["schedule"]) if "schedule" in metadata else None
        if schedule is not None and not isinstance(schedule, dict):
            raise ValueError("the learning-rate schedule state is not a JSON object")
        groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}}
        for name, tensor in tensors.items():
            prefix, _, rest = name.partition(".")
            if prefix not in groups:
                raise ValueError(f"unexpected tensor {name!r}")
            groups[prefix][rest if prefix != "optim" else name] = tensor
        _check_tensors(groups, optim_plain)
        optimizer_state = _optimizer_state(groups["optim"], optim_plain) if optim_plain else None
    except VaelabError as exc:
        raise VaelabError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise VaelabError(f"{path} has a damaged header ({exc}); use another checkpoint") from None
    if (config.model, config.z_dim) != (model_config.name, model_config.z_dim):
        raise VaelabError(
            f"{path} is inconsistent: its training config names {config.model!r} with z_dim="
            f"{config.z_dim} but its model config {model_config.name!r} with z_dim="
            f"{model_config.z_dim}; use another checkpoint")
    return Checkpoint(path, config, model_config, groups["model"], state, optimizer_state,
                      groups["rng"], _recorded_origin(metadata), schedule)


def read_header(path: str | os.PathLike[str]) -> tuple[TrainConfig, TrainState | None]:
    """The training config and state of a checkpoint, from its header alone (no tensors read).

    The header is checked against the file's size as ``read_checkpoint`` checks it, so a
    truncated or foreign file is a one-line VaelabError here too.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            file_size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            head += fh.read(min(size, _MAX_HEADER_BYTES))
    except OSError as exc:
        raise VaelabError(f"cannot read {path}: {exc.strerror or exc}") from None
    metadata = _check_header(path, head, file_size)
    if metadata.get("format") != FORMAT:
        raise VaelabError(f"{path} is not a vaelab checkpoint (format {metadata.get('format')!r})")
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]), source=str(path))
        state = TrainState.from_json(metadata["state"]) if "state" in metadata else None
    except VaelabError as exc:
        raise VaelabError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise VaelabError(f"{path} has a damaged header ({exc}); use another checkpoint") from None
    return config, state


def _check_header(path: Path, raw: bytes, file_size: int | None = None) -> dict[str, str]:
    """Validate the safetensors header against the file's real size; returns its metadata.

    ``raw`` is the file's content, or its first bytes (at least the header) when
    ``file_size`` gives the whole file's size.

    Rejects pickles (a PyTorch ``.pt`` file is a zip of pickles; nothing here unpickles),
    absurd header lengths, unknown dtypes, and tensors whose claimed size disagrees with
    their byte range or lies outside the file, before a single tensor is allocated.
    """
    def bad(reason: str) -> VaelabError:
        return VaelabError(f"{path} is not a valid vaelab checkpoint ({reason}); it may be "
                           "corrupt or truncated: use another checkpoint or train again")

    # A safetensors file has its JSON header at byte 8; a pickle starts with 0x80 and a
    # torch.save zip with "PK" (a header length may also start with 0x80, hence the "{" test).
    if raw[8:9] != b"{" and (raw[:1] == b"\x80" or raw[:4] == b"PK\x03\x04"):
        raise VaelabError(f"{path} is a pickle or torch.save file, not a safetensors checkpoint; "
                          "vaelab never unpickles files (unpickling can run arbitrary code)")
    total = len(raw) if file_size is None else file_size
    if total < 8:
        raise bad(f"only {total} bytes")
    size = int.from_bytes(raw[:8], "little")
    if size > _MAX_HEADER_BYTES or 8 + size > total or 8 + size > len(raw):
        raise bad(f"header claims {size} bytes, file holds {total - 8}")
    try:
        header = json.loads(raw[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise bad("metadata is not a map of strings")
    data_bytes = total - 8 - size
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if not isinstance(dtype, str) or dtype not in _ITEM_BYTES:
            raise bad(f"tensor {name!r} has no supported dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= 8
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise bad(f"tensor {name!r} has an invalid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise bad(f"tensor {name!r} lies outside the file")
        if math.prod(shape) * _ITEM_BYTES[entry["dtype"]] != offsets[1] - offsets[0]:
            raise bad(f"tensor {name!r} claims shape {shape} but holds "
                      f"{offsets[1] - offsets[0]} bytes")
    return metadata


def _check_tensors(groups: dict[str, dict[str, torch.Tensor]], optim_plain: Any) -> None:
    """Dtypes and names a vaelab checkpoint can hold; anything else is a damaged file."""
    for name, tensor in groups["model"].items():
        if tensor.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"model tensor {name!r} has dtype {tensor.dtype}")
    for name, tensor in groups["rng"].items():
        if name not in ("cpu", "cuda") or tensor.dtype != torch.uint8 or tensor.dim() != 1:
            raise ValueError(f"rng state {name!r} is not a byte vector")
    if "cpu" in groups["rng"] and groups["rng"]["cpu"].numel() != torch.get_rng_state().numel():
        raise ValueError("cpu rng state has the wrong length")
    if groups["optim"] and optim_plain is None:
        raise ValueError("optimizer tensors without optimizer settings")
    if optim_plain is not None:
        if not isinstance(optim_plain, dict) or not isinstance(optim_plain.get("state"), dict) \
                or not isinstance(optim_plain.get("param_groups"), list):
            raise ValueError("optimizer settings are malformed")
        if "cpu" not in groups["rng"]:
            raise ValueError("optimizer state without the rng state needed to resume")
    for name, tensor in groups["optim"].items():
        parts = name.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in _OPTIMIZER_KEYS:
            raise ValueError(f"unexpected optimizer tensor {name!r}")
        if tensor.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"optimizer tensor {name!r} has dtype {tensor.dtype}")
