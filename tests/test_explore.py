"""The explorer's Python side: decoder export, latent summary, page assembly and the CLI."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from conftest import epoch_records, lowest_epoch
from vaelab.cli.main import main
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.errors import VaelabError
from vaelab.explore.build import explorer_payload
from vaelab.explore.export import decode_tensor, encode_tensor, export_decoder, run_layers
from vaelab.explore.latents import PRIOR_SIGMAS, latent_means, summarise_latents
from vaelab.explore.page import render_page
from vaelab.models import VAE, ModelConfig, create_model
from vaelab.models.registry import ModelEntry, model_registry
from vaelab.runs.checkpoint import save_checkpoint
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, fit

EXPLORABLE = ("seed", "mlp", "conv")


def _reference(model: VAE, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.decode_probs(z).reshape(len(z), -1).numpy()


@pytest.mark.parametrize("name", EXPLORABLE)
@pytest.mark.parametrize(("encoding", "tolerance"), [("float16", 1e-3), ("float32", 1e-5)])
def test_exported_decoder_matches_pytorch(name: str, encoding: str, tolerance: float) -> None:
    torch.manual_seed(0)
    model = create_model(name=name, z_dim=5).eval()
    z = torch.randn(20, 5) * 2
    exported = export_decoder(model, encoding)
    assert exported.output_shape == (1, 28, 28)
    assert np.abs(run_layers(exported.layers, z.numpy()) - _reference(model, z)).max() < tolerance


def test_layer_lists_name_the_networks() -> None:
    ops = {name: [layer["op"] for layer in export_decoder(create_model(name=name, z_dim=3)).layers]
           for name in EXPLORABLE}
    assert ops["mlp"] == ["linear", "relu", "linear", "reshape"]
    assert ops["conv"] == ["linear", "relu", "linear", "relu", "reshape", "conv_transpose2d",
                           "relu", "conv_transpose2d"]
    conv = export_decoder(create_model(name="conv", z_dim=3)).layers[5]
    assert conv["in_shape"] == [64, 7, 7] and conv["out_shape"] == [32, 14, 14]


def test_int8_weights_stay_within_half_a_step() -> None:
    weight = np.random.default_rng(0).normal(size=(7, 11)).astype(np.float32)
    entry = encode_tensor(weight, "int8")
    step = np.abs(weight).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(decode_tensor(entry) - weight) <= step / 2 + 1e-7)
    assert len(entry["data"]) < len(encode_tensor(weight, "float16")["data"])


class _LeakyDecoderVAE(VAE):
    """A decoder with a layer the page does not run."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = nn.Linear(784, 2 * config.z_dim)
        self.decoder = nn.Sequential(nn.Linear(config.z_dim, 16), nn.LeakyReLU(),
                                     nn.Linear(16, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, 1, 28, 28)


class _SkipDecoderVAE(_LeakyDecoderVAE):
    """A branching decoder: the hidden layer is added back to a projection of z."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.first, self.second = nn.Linear(config.z_dim, 784), nn.Linear(784, 784)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.first(z))
        return (h + self.second(h)).view(-1, 1, 28, 28)


class _ConditionalVAE(_LeakyDecoderVAE):
    conditional = True


@pytest.mark.parametrize(("cls", "named"), [(_LeakyDecoderVAE, "LeakyReLU"),
                                            (_SkipDecoderVAE, "branching"),
                                            (_ConditionalVAE, "conditional")])
def test_unsupported_decoders_are_refused(cls: type[VAE], named: str) -> None:
    with pytest.raises(VaelabError, match=named) as info:
        export_decoder(cls(ModelConfig(name="odd", z_dim=2)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("z_dim", [1, 2, 5])
def test_map_points_map_back_to_latent_vectors(z_dim: int) -> None:
    rng = np.random.default_rng(z_dim)
    means = rng.normal(size=(300, z_dim)) * np.linspace(0.2, 2.5, z_dim)
    labels = rng.integers(0, 10, size=300)
    summary = summarise_latents(means, labels, n_points=200)
    assert summary.map_coords.shape == (200, 2) and len(summary.labels) == 200
    back = summary.map_mean + summary.map_coords @ summary.map_basis
    if z_dim <= 2:  # the map is the latent space itself: exact round trip
        assert summary.map_kind == ("strip" if z_dim == 1 else "dims")
        np.testing.assert_allclose(back, means[:200], atol=1e-12)
    else:  # PCA: the round trip is the projection on the principal plane
        assert summary.map_kind == "pca"
        assert summary.explained[0] >= summary.explained[1] > 0
        np.testing.assert_allclose(summary.map_basis @ summary.map_basis.T, np.eye(2), atol=1e-9)
        residual = means[:200] - back
        np.testing.assert_allclose(residual @ summary.map_basis.T, 0, atol=1e-9)
    assert np.all(summary.slider_low <= np.minimum(means.min(0), -PRIOR_SIGMAS))
    assert np.all(summary.slider_high >= np.maximum(means.max(0), PRIOR_SIGMAS))
    assert np.all(summary.data_low < summary.data_high)


def _payload(name: str, z_dim: int, n_points: int = 2000,
             class_names: list[str] | None = None) -> dict:
    model = create_model(name=name, z_dim=z_dim)
    rng = np.random.default_rng(0)
    info = {"name": name, "dataset": "test", "run": "run", "checkpoint": "best.safetensors",
            "title": name}
    return explorer_payload(export_decoder(model), rng.normal(size=(n_points, z_dim)),
                            rng.integers(0, 10, size=n_points),
                            class_names or [str(d) for d in range(10)], n_points, info)


@pytest.mark.parametrize("name", ["seed", "mlp"])
def test_page_stays_under_two_megabytes_at_z_dim_20(name: str) -> None:
    page = render_page(_payload(name, 20), "size check")
    assert len(page.encode("utf-8")) < 2_000_000


def test_page_is_self_contained_with_a_strict_policy() -> None:
    page = render_page(_payload("mlp", 2, n_points=50,
                                class_names=["</script><script>alert(1)</script>", *"123456789"]),
                       "x")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    rules = dict(rule.strip().split(" ", 1) for rule in policy.group(1).replace("&#x27;", "'")
                 .split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["script-src"].startswith("'sha256-") and rules["style-src"].startswith("'sha256-")
    # Exactly two script elements (data, code) and no reference to anything outside the file.
    assert page.count("<script") == 2 and page.lower().count("</script") == 2
    assert not re.search(r"\b(src|href)\s*=", page) and "http://" not in page
    assert "@import" not in page and "url(" not in page
    data = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["class_names"][0].startswith("</script>")


# --- the command line -----------------------------------------------------------------------

def _train(tiny_dataset: str, tiny_dataset_dir: Path, out: Path, model: str, z_dim: int) -> Path:
    config = TrainConfig(model=model, z_dim=z_dim, dataset=tiny_dataset,
                         data_dir=str(tiny_dataset_dir), epochs=1, batch_size=100, device="cpu",
                         out=str(out))
    fit(config, RunOptions(pictures=False))
    return out


def test_cli_writes_the_page(tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    run = _train(tiny_dataset, tiny_dataset_dir, tmp_path / "run", "mlp", 2)
    assert main(["explore", str(run), "--points", "50"]) == 0
    page = run / "explorer.html"
    out = capsys.readouterr().out
    assert str(page) in out and "MB" in out
    data = page.read_text().split('type="application/json">', 1)[1].split("</script>", 1)[0]
    payload = json.loads(data)
    assert payload["latents"]["n"] == 50 and payload["latents"]["map_kind"] == "dims"
    assert payload["decoder"]["max_abs_error"] < 1e-3


def test_cli_refuses_a_run_without_checkpoint(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["explore", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error:") and err.count("\n") == 1 and "best.safetensors" in err
    assert not (tmp_path / "empty" / "explorer.html").exists()


def _saved_run(tmp_path: Path, cls: type[VAE], name: str, z_dim: int, tiny_dataset: str,
               tiny_dataset_dir: Path) -> Path:
    """An untrained ``cls`` saved as a run directory under the registered name ``name``."""
    run = tmp_path / name
    run.mkdir()
    torch.manual_seed(0)
    model = cls(ModelConfig(name=name, z_dim=z_dim))
    config = TrainConfig(model=name, z_dim=z_dim, dataset=tiny_dataset,
                         data_dir=str(tiny_dataset_dir), out=str(run))
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    save_checkpoint(run / "best.safetensors", model, config)
    return run


def _page_data(page: Path) -> dict:
    return json.loads(page.read_text().split('type="application/json">', 1)[1]
                      .split("</script>", 1)[0])


@pytest.mark.parametrize("z_dim", [1, 2, 5])
def test_a_decoder_the_page_cannot_run_is_decoded_on_a_grid(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, z_dim: int,
) -> None:
    from vaelab.explore.grid import GRID_STEPS, STRIP_STEPS, grid_latents
    from vaelab.explore.latents import summarise_latents

    monkeypatch.setitem(model_registry._entries, "leaky-test",
                        ModelEntry(_LeakyDecoderVAE, "test model"))
    run = _saved_run(tmp_path, _LeakyDecoderVAE, "leaky-test", z_dim, tiny_dataset,
                     tiny_dataset_dir)
    assert main(["explore", str(run), "--points", "50"]) == 0
    captured = capsys.readouterr()
    # The CLI says which path it took, on one line, and what the page holds.
    assert captured.err.count("\n") == 1 and "LeakyReLU" in captured.err
    assert "precomputed" in captured.err and "precomputed on the map" in captured.out
    decoder = _page_data(run / "explorer.html")["decoder"]
    assert decoder["kind"] == "grid" and "LeakyReLU" in decoder["reason"]
    steps = (STRIP_STEPS, 1) if z_dim == 1 else (GRID_STEPS, GRID_STEPS)
    assert tuple(decoder["grid"]["steps"]) == steps
    images = np.frombuffer(base64.b64decode(decoder["grid"]["images"]), np.uint8)
    images = images.reshape(steps[0] * steps[1], 784)
    # Each stored image is PyTorch's decoding of its cell's centre, rounded to 8 bits.
    loaded = load_run(run)
    payload = _page_data(run / "explorer.html")["latents"]
    means = latent_means(loaded.model, load_splits(tiny_dataset, str(tiny_dataset_dir))
                         .test_images)
    labels = load_splits(tiny_dataset, str(tiny_dataset_dir)).test_labels
    summary = summarise_latents(means, labels, 50)
    assert list(summary.map_extent) == pytest.approx(decoder["grid"]["extent"])
    assert payload["map_extent"] == pytest.approx(decoder["grid"]["extent"])
    z = torch.from_numpy(grid_latents(summary, steps)).float()
    with torch.no_grad():
        expected = loaded.model.decode_probs(z).reshape(len(z), -1).numpy()
    assert np.abs(images / 255.0 - expected).max() <= 0.5 / 255 + 1e-6
    assert decoder["max_abs_error"] <= 0.5 / 255 + 1e-6


def test_cli_refuses_a_conditional_model_it_cannot_run(
    tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(model_registry._entries, "cond-test",
                        ModelEntry(_ConditionalVAE, "test model"))
    run = _saved_run(tmp_path, _ConditionalVAE, "cond-test", 2, tiny_dataset, tiny_dataset_dir)
    assert main(["explore", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conditional" in err and "cannot be explored" in err
    assert not (run / "explorer.html").exists()


def _layers_decode(payload: dict[str, Any], z: torch.Tensor) -> np.ndarray:
    """What the page shows for latent vectors ``z``: its decoder layers, run in NumPy."""
    return run_layers(payload["decoder"]["layers"], z.numpy())


def test_cli_shows_the_best_checkpoint_unless_told_otherwise(
        overfitting_run: Path, tmp_path: Path) -> None:
    records = epoch_records(overfitting_run)
    assert lowest_epoch(records, "val_loss") < records[-1]["epoch"], "best and last coincide"
    models = {which: load_run(overfitting_run, which=which).model for which in ("best", "last")}
    z = torch.randn(50, models["best"].z_dim, generator=torch.Generator().manual_seed(0))
    for which, argv in (("best", []), ("last", ["--checkpoint", "last"])):
        page = tmp_path / f"{which}.html"
        assert main(["explore", str(overfitting_run), "--points", "50", "--out", str(page),
                     *argv]) == 0
        payload = _page_data(page)
        assert payload["model"]["checkpoint"] == f"{which}.safetensors"
        shown = _layers_decode(payload, z)
        other = "last" if which == "best" else "best"
        # float16 weights: within 1e-3 of their own model, farther from the other checkpoint's
        assert np.abs(shown - _reference(models[which], z)).max() < 1e-3
        assert np.abs(shown - _reference(models[other], z)).max() > 1e-2


# An int8 page may differ from PyTorch by a few levels of its 8-bit canvas, not more.
INT8_PIXEL_BOUND = 0.01


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_int8_page_decodes_as_the_float_decoder(name: str, tiny_dataset: str,
                                                tiny_dataset_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: `explore --weights int8` stores every weight as int8 with per-unit scales,
    and the decoder the page rebuilds from them draws what the float32 model draws."""
    run = _train(tiny_dataset, tiny_dataset_dir, tmp_path / "run", name, 2)
    page = tmp_path / "int8.html"
    assert main(["explore", str(run), "--weights", "int8", "--points", "50",
                 "--out", str(page)]) == 0
    assert "as int8" in capsys.readouterr().out
    payload = _page_data(page)
    assert payload["decoder"]["encoding"] == "int8"
    weights = [layer["weight"] for layer in payload["decoder"]["layers"] if "weight" in layer]
    assert weights and all(w["dtype"] == "int8" and "scale" in w for w in weights)
    model = load_run(run).model
    z = 2 * torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    error = np.abs(_layers_decode(payload, z) - _reference(model, z))
    assert error.max() < INT8_PIXEL_BOUND
    assert 0 < payload["decoder"]["max_abs_error"] < INT8_PIXEL_BOUND
