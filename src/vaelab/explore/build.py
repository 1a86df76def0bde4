"""``write_explorer``: from a run directory to one self-contained ``explorer.html``.

The page runs the decoder itself when ``export_decoder`` can write it out as layers; for any
other decoder (a user's architecture with layers the page has no JavaScript for) it carries
decodings precomputed on a grid over the map (``vaelab.explore.grid``) and says so.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.errors import VaelabError
from vaelab.explore.export import (
    ENCODINGS,
    DecoderExport,
    UnsupportedDecoder,
    export_decoder,
    run_layers,
)
from vaelab.explore.grid import decode_grid
from vaelab.explore.latents import LatentSummary, latent_means, summarise_latents
from vaelab.explore.page import render_page
from vaelab.notice import notice
from vaelab.runs.atomic import atomic_write_text

__all__ = ["FORMAT", "ExplorerResult", "explorer_payload", "grid_payload", "write_explorer"]

log = logging.getLogger(__name__)

FORMAT = "vaelab-explorer-1"
ERROR_CHECK_SAMPLES = 64  # prior draws on which the exported decoder is compared with PyTorch


@dataclass
class ExplorerResult:
    """What was written, for the CLI to report."""

    path: Path  # the HTML file
    size_bytes: int  # its size on disk
    weight_chars: int  # characters of base64 weight data inside it
    n_weights: int  # decoder weights embedded
    n_points: int  # test images drawn on the map
    encoding: str  # how the weights are stored
    max_abs_error: float  # largest pixel difference from PyTorch: prior draws, or grid points
    layers: list[str]  # the decoder's operations, in order (none for a grid)
    decoder_kind: str = "layers"  # "layers": the page runs the decoder; "grid": precomputed
    grid_steps: tuple[int, int] | None = None  # cells across and down, for a grid
    data_warning: str | None = None  # how the data read differs from what the run trained on


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _payload(decoder: dict[str, Any], z_dim: int, summary: LatentSummary,
             class_names: list[str], info: dict[str, Any]) -> dict[str, Any]:
    latents = summary.to_json()
    latents["means"] = _b64(summary.means.astype("<f2"))
    latents["coords"] = _b64(summary.map_coords.astype("<f4"))
    # One byte per label, or two for datasets of more than 256 classes (QuickDraw has 345).
    wide = len(class_names) > 256
    latents["labels"] = _b64(summary.labels.astype("<u2" if wide else np.uint8))
    latents["label_bytes"] = 2 if wide else 1
    return {"format": FORMAT, "model": {**info, "z_dim": z_dim}, "decoder": decoder,
            "latents": latents, "class_names": class_names}


def explorer_payload(decoder: DecoderExport, means: np.ndarray, labels: np.ndarray | None,
                     class_names: list[str], n_points: int, info: dict[str, Any]) -> dict[str, Any]:
    """The JSON the page reads: decoder layers, latent summary and display facts."""
    summary = summarise_latents(means, labels, n_points)
    layers = {"kind": "layers", "layers": decoder.layers,
              "output_shape": list(decoder.output_shape), "encoding": decoder.encoding,
              "n_weights": decoder.n_weights()}
    return _payload(layers, decoder.z_dim, summary, class_names, info)


def grid_payload(model: Any, reason: str, means: np.ndarray, labels: np.ndarray | None,
                 class_names: list[str], n_points: int, info: dict[str, Any]) -> dict[str, Any]:
    """The JSON of a page whose decodings were precomputed on a grid (``reason``: why)."""
    summary = summarise_latents(means, labels, n_points)
    grid = decode_grid(model, summary)
    decoder = {"kind": "grid", "reason": reason, "grid": grid.to_json(),
               "output_shape": list(model.config.image_shape), "encoding": "uint8",
               "n_weights": 0, "max_abs_error": grid.max_abs_error}
    return _payload(decoder, model.z_dim, summary, class_names, info)


def _max_abs_error(model: Any, layers: list[dict[str, Any]]) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    z = torch.randn(ERROR_CHECK_SAMPLES, model.z_dim, generator=generator)
    with torch.no_grad():
        reference = model.decode_probs(z.to(next(model.parameters()).device)).cpu().numpy()
    ours = run_layers(layers, z.numpy())
    return float(np.abs(ours - reference.reshape(len(z), -1)).max())


def write_explorer(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str = "best",
    encoding: str = "float16",
    n_points: int = 2000,
    data_dir: str | None = None,
    dataset: str | None = None,
) -> ExplorerResult:
    """Write ``explorer.html`` (default: inside the run directory) and say what it holds.

    The map shows the test split of the data the run was trained on, or of ``dataset``.
    """
    from vaelab.data.datasets import display_name
    from vaelab.runs.rebuild import load_run
    from vaelab.runs.run_data import run_data

    if encoding not in ENCODINGS:
        raise VaelabError(f"unknown weight encoding {encoding!r}; choose one of "
                          f"{', '.join(ENCODINGS)}")
    if n_points < 2:
        raise VaelabError(f"--points must be at least 2, got {n_points}")
    loaded = load_run(run_dir, which=checkpoint)
    model, config = loaded.model, loaded.config
    decoder: DecoderExport | None = None
    try:
        decoder = export_decoder(model, encoding)  # before any data is read
    except UnsupportedDecoder as exc:
        if model.conditional:  # a grid of one label's decodings would hide the others
            raise
        reason = exc.what
    data = run_data(loaded.run_dir, config, dataset, data_dir)
    data.check_model(model)
    splits = data.splits
    images, labels = splits.split("test")
    means = latent_means(model, images, config.binarize)
    title = f"{config.model} z_dim={config.z_dim} on {display_name(splits.name)}"
    info = {"name": config.model, "dataset": display_name(splits.name),
            "run": loaded.run_dir.name, "checkpoint": loaded.checkpoint.path.name, "title": title}
    class_names = list(splits.class_names)
    if decoder is not None:
        payload = explorer_payload(decoder, means, labels, class_names, n_points, info)
        layers = payload["decoder"]["layers"]
        error = _max_abs_error(model, layers)
        payload["decoder"]["max_abs_error"] = error
        log.info("exported decoder differs from PyTorch by at most %.2e per pixel", error)
    else:
        payload = grid_payload(model, reason, means, labels, class_names, n_points, info)
        layers, error = [], payload["decoder"]["max_abs_error"]
        columns, rows = payload["decoder"]["grid"]["steps"]
        notice("%s: the page cannot run this decoder (it uses %s), so it carries %s "
               "decodings precomputed by PyTorch on the map and shows the nearest one",
               loaded.run_dir, reason, f"{columns} × {rows}" if rows > 1 else str(columns))
    path = Path(out) if out is not None else loaded.run_dir / "explorer.html"
    if path.parent and not path.parent.is_dir():
        raise VaelabError(f"folder {path.parent} does not exist; create it or choose another --out")
    text = render_page(payload, f"vaelab explorer: {title}")
    atomic_write_text(path, text)
    weight_chars = sum(len(layer[key]["data"]) + len(layer[key].get("scale", ""))
                       for layer in layers for key in ("weight", "bias") if key in layer)
    kind = payload["decoder"]["kind"]
    steps = tuple(payload["decoder"]["grid"]["steps"]) if kind == "grid" else None
    return ExplorerResult(path, path.stat().st_size, weight_chars,
                          payload["decoder"]["n_weights"], payload["latents"]["n"],
                          payload["decoder"]["encoding"], error,
                          [layer["op"] for layer in layers], kind, steps,
                          data.change.warning() if data.change else None)
