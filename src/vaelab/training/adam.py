"""Adam's update on the CPU without ``Optimizer.step``'s per-call Python.

``torch.optim.Adam(fused=True).step()`` checks its flags, groups the tensors by device and
dtype and converts its scalars on every call, then runs two kernels: one adds 1 to every step
counter, the other (``torch._fused_adam_``) updates the parameters and moments. On a small CPU
the Python around them costs about half a millisecond a step, close to a tenth of an mlp step
(docs/speed.md). For a plain Adam — one parameter group, fused, on the CPU, in one dtype, no
AMSGrad, weight decay, ``maximize``, ``capturable`` or ``differentiable`` — the grouping is
the same every step, so ``adam_step`` makes those two calls directly, with the group's
current learning rate and betas. The result is bit-identical (tested); anything else gets
``optimizer.step`` itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["adam_step"]

_OFF = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


def _plain(optimizer: torch.optim.Optimizer) -> bool:
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    params = group["params"]
    return (bool(group.get("fused")) and not any(group.get(k) for k in _OFF)
            and group.get("weight_decay", 0) == 0 and isinstance(group["lr"], float)
            and all(isinstance(b, float) for b in group["betas"])
            and all(p.device.type == "cpu" and p.dtype == params[0].dtype for p in params)
            and hasattr(torch, "_fused_adam_"))


def adam_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """A callable that does what ``optimizer.step()`` does, directly where Adam is plain."""
    if not _plain(optimizer):
        return optimizer.step
    group = optimizer.param_groups[0]
    params: list[torch.Tensor] = group["params"]

    def step() -> None:
        grads = [p.grad for p in params]
        states = [optimizer.state.get(p) for p in params]
        if any(g is None for g in grads) or not all(states):
            optimizer.step()  # the first step creates the moments; a missing grad is Adam's case
            return
        steps = [s["step"] for s in states]  # type: ignore[index]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            params, grads, [s["exp_avg"] for s in states],  # type: ignore[index, arg-type]
            [s["exp_avg_sq"] for s in states], [], steps,  # type: ignore[index]
            amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)

    return step
