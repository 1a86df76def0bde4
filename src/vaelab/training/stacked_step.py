"""The training step of several models stacked into one (``vaelab.training.stacked``).

One call trains every model of the stack on its batch: one gather of the images (one batch per
data seed), one batched matrix product per layer, one fused Adam step over all parameters. Each
model draws its reparameterisation noise from its own generator, in the order a run of that
model alone draws it, so it sees the numbers it would see alone; the draws happen outside the
step, so the step itself can be a CUDA graph (``vaelab.training.graphs``).

``StackedStep`` is the ``Step`` of a run of several members (``vaelab.training.epoch``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from vaelab.device import resolve_precision
from vaelab.models import VAE
from vaelab.pixels import BINARIZERS
from vaelab.training.adam import adam_step
from vaelab.training.graphs import GraphedStep
from vaelab.training.lr_schedule import graph_safe_lr
from vaelab.training.stacked import StackedMLP
from vaelab.training.stacked_grad import HandGradient, hand_gradient_blocker, hand_gradient_pays
from vaelab.training.step import adam_settings, make_optimizer

if TYPE_CHECKING:
    from vaelab.data.tensors import DeviceSplits
    from vaelab.training.lifecycle import Member

__all__ = ["StackedStep"]


class _Buffers:
    """Static inputs of one batch size: indices, gathered bytes and pixels, noise, KL weights."""

    def __init__(self, images: torch.Tensor, groups: int, z_dims: Sequence[int],
                 batch: int) -> None:
        device = images.device
        self.index = torch.zeros(groups, batch, dtype=torch.long, device=device)
        self.raw = torch.empty((groups * batch, *images.shape[1:]), dtype=images.dtype,
                               device=device)
        self.pixels = torch.empty((groups, batch, 1, *images.shape[1:]), dtype=torch.float32,
                                  device=device)
        self.noise = [torch.zeros(batch, z, device=device) for z in z_dims]
        self.eps = torch.zeros(len(z_dims), batch, max(z_dims), device=device)


class StackedStep:
    """``step(index, kl_weights) -> (M, 3)``: one update of every model of the stack.

    ``index`` is (G, B): row g holds the batch of the models trained with the g-th seed of
    ``seeds``. ``use_graph`` replays the step from a CUDA graph on a CUDA device.
    ``hand_gradient`` computes the gradients with ``vaelab.training.stacked_grad`` instead of
    autograd; None: where that pays (fp32 on the CPU).
    """

    def __init__(self, models: Sequence[VAE], configs: Sequence[Any], images: torch.Tensor,
                 rngs: Sequence[dict[str, torch.Tensor]],
                 optimizer_states: Sequence[dict[str, Any] | None],
                 use_graph: bool = False, hand_gradient: bool | None = None) -> None:
        device = images.device
        config = configs[0]
        self.models, self.configs, self.images = list(models), list(configs), images
        self.device, self.n_train = device, len(images)
        self.seeds = sorted({c.seed for c in configs})  # one batch of images per data seed
        group_of = [self.seeds.index(c.seed) for c in configs]
        self.groups = torch.tensor(group_of, device=device) if len(self.seeds) > 1 else None
        self.stacked = StackedMLP(self.models, device)
        self.use_graph = use_graph and device.type == "cuda"
        self.optimizer = self._adam(config, float(_lr(optimizer_states[0], config.lr)))
        self.stacked.load_optimizer_states(
            self.optimizer, [s["state"] if s else None for s in optimizer_states])
        self.adam_step = adam_step(self.optimizer)
        self.rngs = list(rngs)
        self.generators = [_generator(rng, config.seed, device) for rng in rngs]
        self.binarize = BINARIZERS[config.binarize]
        # Dynamic binarisation: one model's batch, drawn from its own generator (whose state
        # its checkpoint keeps) before its noise, in the order TrainStep draws both from the
        # global generator, so the model sees the numbers it would see there. Several models
        # would each need their own binary batch; and the draw happens inside the step, which
        # is then never a CUDA graph (a stack of one trains on the CPU).
        self.noise_after_pixels = config.binarize == "dynamic"
        if self.noise_after_pixels:
            if len(self.models) > 1 or self.use_graph:
                raise ValueError("dynamic binarisation is stacked only for one model, eagerly")
            generator = self.generators[0]
            self.binarize = lambda x: torch.bernoulli(x, generator=generator)
        self.grad_clip = config.grad_clip
        precision = resolve_precision(config.precision, device)
        # Graph replays must not depend on autocast's cache of cast weights.
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                                       enabled=precision == "bf16",
                                       cache_enabled=not self.use_graph)
        self.kl_weights = torch.zeros(len(self.models), device=device)
        if hand_gradient is None:
            hand_gradient = (hand_gradient_pays(device, precision)
                             and hand_gradient_blocker(self.stacked) is None)
        self.hand_gradient = HandGradient(self.stacked) if hand_gradient else None
        self._weights_set: tuple[float, ...] = ()
        self._buffers: dict[int, _Buffers] = {}
        self._graphs: dict[int, GraphedStep] = {}

    @classmethod
    def for_members(cls, members: Sequence[Member], data: DeviceSplits,
                    graphs: bool | None = None) -> StackedStep:
        if graphs is None:
            graphs = os.environ.get("VAELAB_CUDA_GRAPHS", "1") != "0"
        return cls([m.model for m in members], [m.config for m in members], data.train_images,
                   [m.rng for m in members], [m.optimizer_state for m in members],
                   use_graph=graphs)

    def _adam(self, config: Any, lr: float) -> torch.optim.Optimizer:
        """Adam as ``make_optimizer`` builds it (at ``lr``, where a resumed run stands);
        capturable when the step is a CUDA graph."""
        params = self.stacked.parameters()
        settings = {**adam_settings(config), "lr": lr}
        if self.use_graph:
            optimizer = torch.optim.Adam(params, **settings, fused=True, capturable=True)
            graph_safe_lr(optimizer, config)
            return optimizer
        try:
            return torch.optim.Adam(params, **settings, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(params, **settings, foreach=self.device.type != "cpu")

    # -- one step ------------------------------------------------------------------------
    def _body(self, buffers: _Buffers) -> torch.Tensor:
        """Gather, forward, backward, clip, Adam; the (M, 3) batch sums."""
        groups, batch = buffers.index.shape
        torch.index_select(self.images, 0, buffers.index.flatten(), out=buffers.raw)
        x = buffers.pixels
        x.copy_(buffers.raw.view(groups, batch, 1, *self.images.shape[1:]))
        x.div_(255.0)  # as pixels.to_float, so evaluation sees equal pixels
        if self.binarize is not None:
            x = self.binarize(x)
        if self.noise_after_pixels:
            self._draw_noise(buffers)
        for k, noise in enumerate(buffers.noise):
            buffers.eps[k].narrow(1, 0, noise.shape[1]).copy_(noise)
        images = x if self.groups is not None else x[0]
        if self.hand_gradient is not None:
            terms = self.hand_gradient(images, buffers.eps, self.kl_weights, self.groups)
        else:
            with self.autocast:
                terms = self.stacked.terms(images, buffers.eps, self.kl_weights, self.groups)
            self.optimizer.zero_grad(set_to_none=True)
            terms.total.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip is not None:
            self.stacked.clip_grad_norm_(self.grad_clip)
        self.adam_step()
        return terms.sums.float()

    def __call__(self, index: torch.Tensor, kl_weights: Sequence[float]) -> torch.Tensor:
        """Draw each model's noise (after its binary pixels, with dynamic binarisation), run the
        step on ``images[index]``; the (M, 3) sums."""
        rows = index if index.dim() == 2 else index.unsqueeze(0)
        batch = rows.shape[1]
        buffers = self._buffers.get(batch)
        if buffers is None:
            buffers = _Buffers(self.images, len(self.seeds), self.stacked.z_dims, batch)
            self._buffers[batch] = buffers
        buffers.index.copy_(rows, non_blocking=True)
        if not self.noise_after_pixels:
            self._draw_noise(buffers)
        if tuple(kl_weights) != self._weights_set:  # changes only during a KL warm-up
            self.kl_weights.copy_(torch.tensor(kl_weights, dtype=self.kl_weights.dtype))
            self._weights_set = tuple(kl_weights)
        if not self.use_graph:
            return self._body(buffers)
        if batch not in self._graphs:
            self._graphs[batch] = GraphedStep(
                lambda: self._body(buffers), f"the stacked step of batch size {batch}",
                before_capture=lambda: self.optimizer.zero_grad(set_to_none=True))
        return self._graphs[batch]()

    def _draw_noise(self, buffers: _Buffers) -> None:
        for noise, generator in zip(buffers.noise, self.generators, strict=True):
            torch.randn(noise.shape, generator=generator, out=noise)

    # -- each member as a model of its own ----------------------------------------------
    def member_model(self, member: int) -> VAE:
        """Member ``member``'s model, brought up to date with the stack's weights."""
        self.stacked.copy_to(member, self.models[member])
        return self.models[member]

    def member_optimizer(self, member: int) -> torch.optim.Optimizer:
        """An Adam of the member's model holding the state its own run would hold."""
        model = self.models[member]
        single = make_optimizer(model, self.configs[member], self.device)
        groups = single.state_dict()["param_groups"]
        for group in groups:
            group["lr"] = float(self.optimizer.param_groups[0]["lr"])  # a tensor in a graph
        state = self.stacked.optimizer_state(self.optimizer, member)
        single.load_state_dict({"state": state, "param_groups": groups})
        return single

    def member_rng(self, member: int) -> dict[str, torch.Tensor]:
        """The random state a run of this member alone would hold now."""
        generator = self.generators[member]
        if self.device.type == "cpu":
            return {"cpu": generator.get_state()}
        return {"cpu": self.rngs[member]["cpu"], self.device.type: generator.get_state()}


def _lr(optimizer_state: dict[str, Any] | None, default: float) -> float:
    """The learning rate in effect: a resumed optimizer keeps its own."""
    if optimizer_state:
        return float(optimizer_state["param_groups"][0]["lr"])
    return default


def _generator(rng: dict[str, torch.Tensor], seed: int,
               device: torch.device) -> torch.Generator:
    """A generator on ``device`` continuing the stream a run alone would draw noise from."""
    generator = torch.Generator(device=device)
    if device.type == "cpu":
        generator.set_state(rng["cpu"])
    elif device.type in rng:
        generator.set_state(rng[device.type])
    else:
        generator.manual_seed(seed)  # what torch.manual_seed(seed) gives the device generator
    return generator
