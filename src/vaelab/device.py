"""Choosing the compute device, and the precision it runs fast."""

from __future__ import annotations

import logging

import torch

from vaelab.errors import VaelabError

__all__ = ["bf16_is_native", "resolve_device", "resolve_precision"]

log = logging.getLogger(__name__)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaelabError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu"
        )
    if name == "mps" and not _mps_available():
        raise VaelabError("--device mps was asked for but MPS is not available; use --device cpu")
    return torch.device(name)


def _cpu_flag(name: str) -> bool:
    check = getattr(torch.cpu, name, None)
    return bool(check()) if callable(check) else False


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 matrix products run in hardware here (else they are emulated, and slow).

    CUDA GPUs that report bf16 support; CPUs with AVX-512-bf16 or AMX tiles. On a CPU with only
    AVX2 torch emulates bf16, and a bf16 epoch was measured ten times slower than fp32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return _cpu_flag("_is_avx512_bf16_supported") or _cpu_flag("_is_amx_tile_supported")
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where it is native, else fp32; an explicit bf16 where it is emulated
    is kept but warned about (once per run)."""
    native = bf16_is_native(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        where = f"this CPU ({torch.backends.cpu.get_cpu_capability()})" \
            if device.type == "cpu" else f"this {device.type} device"
        log.warning("--precision bf16: %s has no native bf16, so torch emulates it and training "
                    "runs several times slower than fp32; use --precision fp32 or auto", where)
    return precision
