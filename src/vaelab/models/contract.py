"""The contract every model keeps, checked at the door: before a model trains or is loaded.

vaelab's own architectures and a user's go through the same checks. ``build_checked`` runs a
registered builder and checks what it returned (a ``VAE`` with parameters, built from the config
it was given); ``check_behaviour`` runs the model once on a batch, as training, the likelihood
estimator and the pictures will, and checks every output's type, shape, dtype, device and
finiteness, and that the loss has a gradient. Each violation is one VaelabError line naming the
model's method, what it gave and what was expected, e.g. ``MyVAE.decode returned (32, 784);
expected (32, 1, 28, 28) Bernoulli logits``; an exception inside the model's own code keeps
its message and its file:line. The check leaves no trace: random state, buffers (batch-norm
statistics) and gradients are as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from vaelab.errors import VaelabError
from vaelab.models.base import VAE, ModelConfig
from vaelab.models.registry import ModelEntry
from vaelab.models.user_code import defined_at, describe_exception

__all__ = ["IMPORTANCE_SAMPLES", "build_checked", "check_behaviour", "is_builtin"]

IMPORTANCE_SAMPLES = 2  # draws per image when the likelihood estimator's weights are checked


def is_builtin(entry: ModelEntry) -> bool:
    """Whether the entry is one of vaelab's own architectures."""
    return entry.origin is not None and entry.origin.kind == "vaelab"


def build_checked(entry: ModelEntry, config: ModelConfig) -> VAE:
    """``entry.build(config)``, checked: a VAE for this config, with parameters to train."""
    if is_builtin(entry):
        model: Any = entry.build(config)  # vaelab's own errors keep their types
    else:
        try:
            model = entry.build(config)
        except VaelabError:
            raise
        except Exception as exc:
            raise VaelabError(f"model {config.name!r}: its builder {defined_at(entry.build)} "
                              f"raised {describe_exception(exc)}") from None
    label = f"model {config.name!r}"
    if not isinstance(model, VAE):
        raise VaelabError(f"{label}: its builder {defined_at(entry.build)} returned a "
                          f"{type(model).__name__}; expected a vaelab.models.VAE (subclass it, or "
                          "wrap an encoder and a decoder with vaelab.models.from_modules)")
    own = getattr(model, "config", None)
    cls = type(model).__name__
    if not isinstance(own, ModelConfig):
        raise VaelabError(f"{label}: {cls}.config is a {type(own).__name__}; expected the "
                          "ModelConfig the builder receives (pass it to VAE.__init__)")
    if (own.name, own.z_dim, tuple(own.image_shape)) != (config.name, config.z_dim,
                                                         tuple(config.image_shape)):
        raise VaelabError(f"{label}: {cls}.config describes {own.name!r} with z_dim={own.z_dim}; "
                          f"expected {config.name!r} with z_dim={config.z_dim}: pass the config "
                          "the builder receives to VAE.__init__ unchanged")
    parameters = list(model.parameters())
    if sum(p.numel() for p in parameters) == 0:
        raise VaelabError(f"{label}: {cls} has no parameters; expected layers (nn.Linear, "
                          "nn.Conv2d, ...) assigned as attributes in __init__, so that training "
                          "has something to change")
    odd = next(((n, p) for n, p in model.named_parameters() if not p.is_floating_point()), None)
    if odd is not None:
        raise VaelabError(f"{label}: parameter {odd[0]} of {cls} has dtype {odd[1].dtype}; "
                          "expected floating-point parameters")
    return model


def _name(model: VAE, method: str) -> str:
    part_name = getattr(model, "part_name", None)
    if callable(part_name):
        return str(part_name(method))
    return f"{type(model).__name__}.{method}" if method != "forward" else type(model).__name__


def _shape(value: torch.Tensor) -> str:
    return str(tuple(value.shape)).replace(",)", ")")


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except VaelabError:
        raise
    except Exception as exc:
        raise VaelabError(f"{what} raised {describe_exception(exc)}") from None


def _tensor(what: str, value: Any, shape: tuple[int, ...], like: torch.Tensor,
            meaning: str) -> torch.Tensor:
    """``value`` must be a finite tensor of ``shape`` with ``like``'s dtype and device."""
    expected = _shape(torch.empty(shape, device="meta"))
    if not torch.is_tensor(value):
        raise VaelabError(f"{what} returned a {type(value).__name__}; expected a tensor "
                          f"{expected} of {meaning}")
    if tuple(value.shape) != shape:
        raise VaelabError(f"{what} returned {_shape(value)}; expected {expected} {meaning}")
    if value.dtype != like.dtype:
        raise VaelabError(f"{what} returned {meaning} of dtype {value.dtype}; expected "
                          f"{like.dtype}, the images' dtype")
    if value.device != like.device:
        raise VaelabError(f"{what} returned {meaning} on {value.device}; expected them on "
                          f"{like.device}, where the model and the images are")
    if not bool(torch.isfinite(value.detach()).all()):
        raise VaelabError(f"{what} returned {meaning} with NaN or infinite values; expected "
                          "finite numbers (check the initialisation and any log or division)")
    return value


@contextlib.contextmanager
def _no_trace(model: VAE, device: torch.device) -> Iterator[None]:
    """Random state, buffers and gradients as they were before the block."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in buffers:
                    buffer.copy_(buffers[name])
        for parameter in model.parameters():
            parameter.grad = None


def check_behaviour(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None,
                    gradients: bool = True) -> None:
    """Run ``model`` on images ``x`` (B, C, H, W) in [0, 1] (labels ``y``) and check it all."""
    batch, z_dim = len(x), model.config.z_dim
    image = (batch, *model.config.image_shape)
    with _no_trace(model, x.device):
        encoded = _call(_name(model, "encode"), model.encode, x, y)
        what = _name(model, "encode")
        if not (isinstance(encoded, tuple | list) and len(encoded) == 2):
            got = type(encoded).__name__ if not torch.is_tensor(encoded) \
                else f"one tensor {_shape(encoded)}"
            raise VaelabError(f"{what} returned {got}; expected a pair (mu, logvar), each "
                              f"({batch}, {z_dim})")
        mu = _tensor(what, encoded[0], (batch, z_dim), x, "mu")
        _tensor(what, encoded[1], (batch, z_dim), x, "logvar")
        what = _name(model, "decode")
        _tensor(what, _call(what, model.decode, mu.detach(), y), image, x, "Bernoulli logits")
        what = _name(model, "forward")
        out = _call(what, model, x, y)
        for field in ("loss", "recon_nll", "kl", "logits"):
            if not hasattr(out, field):
                raise VaelabError(f"{what}.forward returned a {type(out).__name__}; expected a "
                                  "vaelab.models.VAEOutput (leave forward to the base class)")
        loss = _tensor(what, out.loss, (), x, "a loss")
        _tensor(what, out.recon_nll, (batch,), x, "per-image reconstruction terms")
        _tensor(what, out.kl, (batch,), x, "per-image KL terms")
        if gradients:
            if loss.requires_grad:
                _call(f"the backward pass of {what}", loss.backward)
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            if not grads:
                raise VaelabError(f"the loss of {what} has no gradient with respect to its "
                                  "parameters; expected encode and decode to use its layers "
                                  "(is something detached or computed without them?)")
            if not all(bool(torch.isfinite(g).all()) for g in grads):
                raise VaelabError(f"the loss of {what} has NaN or infinite gradients at "
                                  "initialisation; expected finite ones")
        with torch.no_grad():
            what = _name(model, "importance_log_weights")
            k = IMPORTANCE_SAMPLES
            _tensor(what, _call(what, model.importance_log_weights, x, k, y), (k, batch), x,
                    "log importance weights")
            what = _name(model, "sample_prior")
            _tensor(what, _call(what, model.sample_prior, batch), (batch, z_dim), x,
                    "prior draws")
