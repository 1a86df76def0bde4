"""``write_explorer``: from a run directory to one self-contained ``explorer.html``."""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.errors import VaelabError
from vaelab.explore.export import ENCODINGS, DecoderExport, export_decoder, run_layers
from vaelab.explore.latents import latent_means, summarise_latents
from vaelab.explore.page import render_page
from vaelab.runs.atomic import atomic_write_text

__all__ = ["FORMAT", "ExplorerResult", "explorer_payload", "write_explorer"]

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
    max_abs_error: float  # largest pixel difference, exported decoder vs PyTorch, on prior draws
    layers: list[str]  # the decoder's operations, in order
    data_warning: str | None = None  # how the data read differs from what the run trained on


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def explorer_payload(decoder: DecoderExport, means: np.ndarray, labels: np.ndarray | None,
                     class_names: list[str], n_points: int, info: dict[str, Any]) -> dict[str, Any]:
    """The JSON the page reads: decoder layers, latent summary and display facts."""
    summary = summarise_latents(means, labels, n_points)
    latents = summary.to_json()
    latents["means"] = _b64(summary.means.astype("<f2"))
    latents["coords"] = _b64(summary.map_coords.astype("<f4"))
    # One byte per label, or two for datasets of more than 256 classes (QuickDraw has 345).
    wide = len(class_names) > 256
    latents["labels"] = _b64(summary.labels.astype("<u2" if wide else np.uint8))
    latents["label_bytes"] = 2 if wide else 1
    return {
        "format": FORMAT,
        "model": {**info, "z_dim": decoder.z_dim},
        "decoder": {"layers": decoder.layers, "output_shape": list(decoder.output_shape),
                    "encoding": decoder.encoding, "n_weights": decoder.n_weights()},
        "latents": latents,
        "class_names": class_names,
    }


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
    decoder = export_decoder(model, encoding)  # refuses an unsupported model before any data
    data = run_data(loaded.run_dir, config, dataset, data_dir)
    data.check_model(model)
    splits = data.splits
    images, labels = splits.split("test")
    means = latent_means(model, images, config.binarize)
    title = f"{config.model} z_dim={config.z_dim} on {display_name(splits.name)}"
    info = {"name": config.model, "dataset": display_name(splits.name),
            "run": loaded.run_dir.name, "checkpoint": loaded.checkpoint.path.name, "title": title}
    payload = explorer_payload(decoder, means, labels, list(splits.class_names), n_points, info)
    layers = payload["decoder"]["layers"]
    error = _max_abs_error(model, layers)
    payload["decoder"]["max_abs_error"] = error
    log.info("exported decoder differs from PyTorch by at most %.2e per pixel", error)
    path = Path(out) if out is not None else loaded.run_dir / "explorer.html"
    if path.parent and not path.parent.is_dir():
        raise VaelabError(f"folder {path.parent} does not exist; create it or choose another --out")
    text = render_page(payload, f"vaelab explorer: {title}")
    atomic_write_text(path, text)
    weight_chars = sum(len(layer[key]["data"]) + len(layer[key].get("scale", ""))
                       for layer in layers for key in ("weight", "bias") if key in layer)
    return ExplorerResult(path, path.stat().st_size, weight_chars,
                          payload["decoder"]["n_weights"], payload["latents"]["n"], encoding,
                          error, [layer["op"] for layer in layers],
                          data.change.warning() if data.change else None)
