"""A model's decoder as a plain list of layers that the explorer page runs in JavaScript.

The decoder is traced with ``torch.fx`` and read node by node. Each supported operation becomes
one JSON-ready dict (``{"op": "linear", ...}``); anything else is refused with a one-line
VaelabError, so the page never runs a network it does not understand. Weights are stored in
base64 as float16 (default), float32, or int8 with one float32 scale per output unit.

``run_layers`` is the NumPy reference of the page's decoder: it reads the same dicts, so tests
check the format against PyTorch without a browser.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    import torch

    from vaelab.models import VAE

__all__ = [
    "ENCODINGS",
    "SUPPORTED_OPS",
    "DecoderExport",
    "UnsupportedDecoder",
    "decode_tensor",
    "encode_tensor",
    "export_decoder",
    "run_layers",
]

Layer = dict[str, Any]

# What the page can run, named in error messages.
SUPPORTED_OPS = "Linear, ReLU, Tanh, Sigmoid, reshape/view/flatten and ConvTranspose2d"


# --- tensor encodings -------------------------------------------------------------------------

def _float32(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": "float32", "data": _b64(array.astype("<f4"))}


def _float16(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": "float16", "data": _b64(array.astype("<f2"))}


def _int8(array: np.ndarray) -> dict[str, Any]:
    # One scale per output unit; callers pass weights with output units on the first axis.
    rows = array.reshape(array.shape[0], -1).astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    quantised = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return {"dtype": "int8", "data": _b64(quantised), "scale": _b64(scale.astype("<f4"))}


# name -> encoder of a weight array (output units along the first axis)
ENCODINGS: dict[str, Callable[[np.ndarray], dict[str, Any]]] = {
    "float16": _float16,
    "float32": _float32,
    "int8": _int8,
}


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def encode_tensor(array: np.ndarray, encoding: str) -> dict[str, Any]:
    """A weight array as ``{"dtype", "shape", "data"[, "scale"]}`` with base64 data."""
    if encoding not in ENCODINGS:
        raise VaelabError(f"unknown weight encoding {encoding!r}; choose one of "
                          f"{', '.join(ENCODINGS)}")
    return {"shape": list(array.shape), **ENCODINGS[encoding](array)}


def decode_tensor(entry: dict[str, Any]) -> np.ndarray:
    """The float32 array an ``encode_tensor`` dict stands for (what the page reconstructs)."""
    raw = base64.b64decode(entry["data"])
    shape = tuple(entry["shape"])
    if entry["dtype"] == "int8":
        scale = np.frombuffer(base64.b64decode(entry["scale"]), "<f4")
        rows = np.frombuffer(raw, np.int8).reshape(shape[0], -1).astype(np.float32)
        decoded: np.ndarray = (rows * scale[:, None]).reshape(shape)
        return decoded
    dtype = {"float16": "<f2", "float32": "<f4"}[entry["dtype"]]
    values: np.ndarray = np.frombuffer(raw, dtype).astype(np.float32).reshape(shape)
    return values


# --- tracing the decoder ----------------------------------------------------------------------

@dataclass
class DecoderExport:
    """The decoder as layers, with the shapes the page needs."""

    layers: list[Layer]  # in order; the page applies a sigmoid after the last one
    z_dim: int  # length of the input vector
    output_shape: tuple[int, int, int]  # channels, height, width of the logits
    encoding: str  # how the weights are stored, a key of ENCODINGS

    def n_weights(self) -> int:
        return sum(int(np.prod(layer[key]["shape"])) for layer in self.layers
                   for key in ("weight", "bias") if key in layer)


@dataclass
class _Node:
    """What an exporter sees of one traced operation."""

    name: str  # the fx node name, for error messages
    module: Any  # the nn.Module for call_module nodes, else None
    args: tuple[Any, ...]  # arguments after the input tensor
    in_shape: tuple[int, ...]  # input shape without the batch axis
    out_shape: tuple[int, ...]  # output shape without the batch axis
    encoding: str


def _linear(node: _Node) -> Layer:
    module = node.module
    layer: Layer = {"op": "linear", "in": module.in_features, "out": module.out_features,
                    "weight": encode_tensor(module.weight.detach().cpu().numpy(), node.encoding)}
    if module.bias is not None:
        layer["bias"] = encode_tensor(module.bias.detach().cpu().numpy(), "float32")
    return layer


def _conv_transpose2d(node: _Node) -> Layer:
    module = node.module
    if module.groups != 1 or tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros":
        raise VaelabError(f"decoder layer {node.name} is a ConvTranspose2d with groups, dilation "
                          "or padding mode the explorer does not support")
    # PyTorch stores (in, out, kh, kw); output units go first so int8 scales are per output map.
    weight = module.weight.detach().cpu().numpy().transpose(1, 0, 2, 3)
    layer: Layer = {
        "op": "conv_transpose2d", "in_shape": list(node.in_shape),
        "out_shape": list(node.out_shape), "stride": list(module.stride),
        "padding": list(module.padding), "weight": encode_tensor(weight, node.encoding),
    }
    if module.bias is not None:
        layer["bias"] = encode_tensor(module.bias.detach().cpu().numpy(), "float32")
    return layer


def _activation(op: str) -> Callable[[_Node], Layer]:
    return lambda node: {"op": op}


def _reshape(node: _Node) -> Layer:
    return {"op": "reshape", "shape": list(node.out_shape)}


def _identity(node: _Node) -> None:
    return None


def _module_exporters() -> dict[type, Callable[[_Node], Layer | None]]:
    from torch import nn

    return {
        nn.Linear: _linear,
        nn.ConvTranspose2d: _conv_transpose2d,
        nn.ReLU: _activation("relu"),
        nn.Tanh: _activation("tanh"),
        nn.Sigmoid: _activation("sigmoid"),
        nn.Flatten: _reshape,
        nn.Unflatten: _reshape,
        nn.Identity: _identity,
        nn.Dropout: _identity,  # a no-op in eval mode, the mode the page reproduces
    }


def _function_exporters() -> dict[Any, Callable[[_Node], Layer | None]]:
    import torch
    import torch.nn.functional as F

    return {
        torch.relu: _activation("relu"), F.relu: _activation("relu"),
        torch.tanh: _activation("tanh"), F.tanh: _activation("tanh"),
        torch.sigmoid: _activation("sigmoid"), F.sigmoid: _activation("sigmoid"),
        torch.flatten: _reshape, torch.reshape: _reshape,
    }


_METHOD_EXPORTERS: dict[str, Callable[[_Node], Layer | None]] = {
    "view": _reshape, "reshape": _reshape, "flatten": _reshape, "unflatten": _reshape,
    "contiguous": _identity, "relu": _activation("relu"), "tanh": _activation("tanh"),
    "sigmoid": _activation("sigmoid"),
}


def _decode_module(model: VAE) -> torch.nn.Module:
    """``model.decode`` as a module's forward, which is what fx traces."""
    from torch import nn

    class Decode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = model

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.vae.decode(z)

    return Decode()


class UnsupportedDecoder(VaelabError):
    """A decoder the page cannot run; ``what`` names the operation (or shape) in question."""

    def __init__(self, model_name: str, what: str) -> None:
        self.what = what
        super().__init__(f"model {model_name!r} cannot be explored: its decoder uses {what}; "
                         f"the explorer runs decoders built from {SUPPORTED_OPS}")


def _unsupported(model_name: str, what: str) -> VaelabError:
    return UnsupportedDecoder(model_name, what)


def _trace(model: VAE) -> Any:
    import torch
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    name = model.config.name
    if getattr(model, "conditional", False):
        raise _unsupported(name, "the label as a second input (a conditional model)")
    try:
        graph_module = torch.fx.symbolic_trace(_decode_module(model))
        device = next(model.parameters()).device
        ShapeProp(graph_module).propagate(torch.zeros(2, model.z_dim, device=device))
    except UnsupportedDecoder:
        raise
    except Exception as exc:  # tracing raises many types; any means "not a plain decoder"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _unsupported(name, f"control flow the page cannot follow ({first})") from None
    return graph_module


def _describe(node: Any, graph_module: Any) -> str:
    if node.op == "call_module":
        where = str(node.target).removeprefix("vae.")  # the traced wrapper's own attribute
        return f"{type(graph_module.get_submodule(node.target)).__name__} ({where})"
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return f".{node.target}()"


def export_decoder(model: VAE, encoding: str = "float16") -> DecoderExport:
    """Trace ``model.decode`` into a layer list, or raise a one-line VaelabError."""
    if encoding not in ENCODINGS:
        raise VaelabError(f"unknown weight encoding {encoding!r}; choose one of "
                          f"{', '.join(ENCODINGS)}")
    model_name = model.config.name
    graph_module = _trace(model)
    modules, functions = _module_exporters(), _function_exporters()
    layers: list[Layer] = []
    previous = None  # the node whose output the next operation must consume
    output_shape: tuple[int, ...] = ()
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            previous = node
            continue
        if node.op == "output":
            if node.args[0] is not previous:
                raise _unsupported(model_name, "an output that is not the last operation's")
            output_shape = tuple(previous.meta["tensor_meta"].shape[1:])
            break
        if node.op == "get_attr":
            raise _unsupported(model_name, f"a stored tensor ({node.target}) outside a layer")
        tensor_args = [a for a in (*node.args, *node.kwargs.values()) if hasattr(a, "op")]
        if not node.args or node.args[0] is not previous or len(tensor_args) != 1:
            raise _unsupported(model_name, f"{_describe(node, graph_module)} on more than one "
                               "input or off the main path (a branching network)")
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            exporter = modules.get(type(module))
        else:
            module = None
            table = functions if node.op == "call_function" else _METHOD_EXPORTERS
            exporter = table.get(node.target)
        if exporter is None:
            raise _unsupported(model_name, _describe(node, graph_module))
        layer = exporter(_Node(
            name=str(node.target), module=module, args=tuple(node.args[1:]),
            in_shape=tuple(previous.meta["tensor_meta"].shape[1:]),
            out_shape=tuple(node.meta["tensor_meta"].shape[1:]), encoding=encoding,
        ))
        if layer is not None:
            layers.append(layer)
        previous = node
    expected = model.config.image_shape
    if output_shape != tuple(expected):
        raise _unsupported(model_name, f"an output of shape {output_shape}, not {expected}")
    return DecoderExport(layers=layers, z_dim=model.z_dim, output_shape=expected,
                         encoding=encoding)


# --- the NumPy reference of the page's decoder ------------------------------------------------

def _run_conv_transpose2d(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Scatter form, as the page computes it: each input pixel adds a weighted kernel."""
    weight = decode_tensor(layer["weight"])  # (out, in, kh, kw)
    c_out, h_out, w_out = layer["out_shape"]
    _, h_in, w_in = layer["in_shape"]
    (sh, sw), (ph, pw) = layer["stride"], layer["padding"]
    kh, kw = weight.shape[2:]
    batch = x.shape[0]
    x = x.reshape(batch, *layer["in_shape"])
    # Full-size canvas before cropping the padding, as in the transposed-convolution definition.
    full = np.zeros((batch, c_out, (h_in - 1) * sh + kh, (w_in - 1) * sw + kw), np.float64)
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky, ky + (h_in - 1) * sh + 1, sh)
            cols = slice(kx, kx + (w_in - 1) * sw + 1, sw)
            full[:, :, rows, cols] += np.einsum("bihw,oi->bohw", x, weight[:, :, ky, kx])
    out = full[:, :, ph:ph + h_out, pw:pw + w_out]
    if "bias" in layer:
        out = out + decode_tensor(layer["bias"])[None, :, None, None]
    return out.reshape(batch, -1)


def _run_linear(layer: Layer, x: np.ndarray) -> np.ndarray:
    out = x @ decode_tensor(layer["weight"]).astype(np.float64).T
    return out + decode_tensor(layer["bias"]) if "bias" in layer else out


_RUNNERS: dict[str, Callable[[Layer, np.ndarray], np.ndarray]] = {
    "linear": _run_linear,
    "conv_transpose2d": _run_conv_transpose2d,
    "relu": lambda layer, x: np.maximum(x, 0.0),
    "tanh": lambda layer, x: np.tanh(x),
    "sigmoid": lambda layer, x: 1.0 / (1.0 + np.exp(-x)),
    "reshape": lambda layer, x: x,  # activations stay flat, in row-major order
}


def run_layers(layers: list[Layer], z: np.ndarray) -> np.ndarray:
    """Pixel probabilities (B, n_pixels) of latent vectors z (B, z_dim), as the page computes."""
    x = np.asarray(z, np.float64).reshape(len(z), -1)
    for layer in layers:
        x = _RUNNERS[layer["op"]](layer, x)
    return 1.0 / (1.0 + np.exp(-x))
