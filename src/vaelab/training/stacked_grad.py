"""The gradient of the stacked MLPs' negative ELBO, written out layer by layer.

``StackedMLP.terms`` plus ``backward()`` is the reference; autograd records every op of it and
replays the record backwards. For a chain of linear layers with ReLU or tanh, a Bernoulli
decoder and a Gaussian posterior the backward pass is short enough to write down, and doing so
saves autograd's bookkeeping and one allocation per gradient: every gradient is written with
``out=`` into the parameter's ``.grad``. On a small CPU that makes a one-model step 3-17 %
faster (docs/speed.md). The elementwise derivatives are the ones autograd uses
(``threshold_backward``, ``tanh_backward``, sigmoid minus target), and the tests hold the two
to float64 rounding.

With c = 1 / batch and beta each model's KL weight, for one model's batch mean of
recon + beta * kl:

* d logits = c * (sigmoid(logits) - x)
* a linear layer y = h W + b: dW = hᵀ dy, db = Σ_batch dy, dh = dy Wᵀ; then through the
  activation that produced h, from its output
* z = mu + eps * std with std = exp(logvar / 2), kl = ½ Σ (mu² + exp(logvar) - 1 - logvar):
  d mu = dz + c beta mu, d logvar = ½ dz eps std + ½ c beta (exp(logvar) - 1)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vaelab.training.stacked import Layer, StackedMLP, StackedTerms

__all__ = ["ACTIVATION_GRADS", "HandGradient", "hand_gradient_blocker", "hand_gradient_pays"]

# d(loss)/d(input) of an activation from d(loss)/d(output) and the output, as autograd does it.
ACTIVATION_GRADS: dict[type[nn.Module], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
    nn.Tanh: lambda grad, out: torch.ops.aten.tanh_backward(grad, out),
}


def hand_gradient_blocker(stacked: StackedMLP) -> str | None:
    """Why the stack's gradient cannot be written out (None when it can)."""
    for layer in stacked.encoder + stacked.decoder:
        if layer.activation is not None and type(layer.activation) not in ACTIVATION_GRADS:
            return f"no written-out derivative of {type(layer.activation).__name__}"
    return None


def hand_gradient_pays(device: torch.device, precision: str) -> bool:
    """Where the written-out gradient is the default: fp32 on the CPU (docs/speed.md).

    On a GPU the step is one CUDA graph, which already removes what it saves; bf16 runs
    under autocast, which only autograd's path applies.
    """
    return device.type == "cpu" and precision == "fp32"


class HandGradient:
    """``gradient(x, eps, kl_weights, groups)``: ``StackedMLP.terms`` and its parameter gradients.

    Fills every parameter's ``.grad`` (allocated once, overwritten each call) and returns the
    same ``StackedTerms`` as ``terms``.
    """

    def __init__(self, stacked: StackedMLP) -> None:
        reason = hand_gradient_blocker(stacked)
        if reason is not None:
            raise ValueError(reason)
        self.stacked = stacked
        # The decoder's first layer passes its gradient on to z; the encoder's first layer
        # reads the pixels, which need none.
        self.needs_input_grad = {stacked.decoder[0].name} if stacked.decoder else set()

    def _grad(self, name: str) -> torch.Tensor:
        param = self.stacked.params[name]
        if param.grad is None:
            param.grad = torch.empty_like(param)
        return param.grad

    def _weight_grads(self, grad_out: torch.Tensor, h_in: torch.Tensor, name: str) -> None:
        """Fill ``name``'s weight and bias gradients from its output's gradient and its input."""
        torch.bmm(h_in.transpose(1, 2), grad_out, out=self._grad(f"{name}.weight"))
        torch.sum(grad_out, dim=1, out=self._grad(f"{name}.bias"))

    def _input_grad(self, grad_out: torch.Tensor, name: str) -> torch.Tensor:
        return torch.bmm(grad_out, self.stacked.params[f"{name}.weight"].transpose(1, 2))

    def _backward_layers(self, grad: torch.Tensor, layers: list[Layer],
                         inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> torch.Tensor:
        """Back through ``layers`` from the gradient of the last one's activation output.

        ``inputs`` and ``outputs`` are each layer's input and activation output in the forward
        pass. Returns the gradient of the first layer's input, or, where that input needs none
        (the pixels), of its pre-activation output.
        """
        for i in reversed(range(len(layers))):
            layer = layers[i]
            if layer.activation is not None:
                grad = ACTIVATION_GRADS[type(layer.activation)](grad, outputs[i])
            self._weight_grads(grad, inputs[i], layer.name)
            if i > 0 or layer.name in self.needs_input_grad:
                grad = self._input_grad(grad, layer.name)
        return grad

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, eps: torch.Tensor, kl_weights: torch.Tensor,
                 groups: torch.Tensor | None = None) -> StackedTerms:
        """The arguments of ``StackedMLP.terms``; fills the gradients of its total."""
        stacked = self.stacked
        f = stacked.forward(x, eps, groups)
        terms = stacked.loss(f, kl_weights)
        c = 1.0 / f.logits.shape[1]  # each model's loss is its batch mean
        grad = torch.sigmoid(f.logits).sub_(f.pixels).mul_(c)
        self._weight_grads(grad, f.decoded[-1] if f.decoded else f.z, "to_logits")
        dz = self._input_grad(grad, "to_logits")
        if stacked.decoder:
            dz = self._backward_layers(dz, stacked.decoder, [f.z, *f.decoded[:-1]], f.decoded)
        cb = (c * 0.5) * kl_weights.view(-1, 1, 1)
        d_posterior = torch.empty_like(f.posterior)
        d_mu, d_logvar = d_posterior.chunk(2, dim=2)
        torch.addcmul(dz, cb, 2.0 * f.mu, out=d_mu)
        torch.addcmul((0.5 * dz) * eps * f.std, cb, f.logvar.exp() - 1.0, out=d_logvar)
        self._weight_grads(d_posterior, f.encoded[-1] if f.encoded else f.pixels,
                           "to_posterior")
        if stacked.encoder:
            grad = self._input_grad(d_posterior, "to_posterior")
            self._backward_layers(grad, stacked.encoder, [f.pixels, *f.encoded[:-1]], f.encoded)
        return terms
