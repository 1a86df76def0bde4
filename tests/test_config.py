"""A training run's settings in layers, lowest first: field defaults, a preset, a TOML file, the
flags given on the command line; each setting comes from the highest layer that sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaelab.cli.main import build_parser
from vaelab.config import PRESETS, TrainConfig, config_from_args


def _resolved(*argv: str) -> TrainConfig:
    """The config `vaelab train ARGV` would train, from its parsed flags (nothing trains)."""
    return config_from_args(build_parser().parse_args(["train", *argv]))


def _toml(folder: Path, text: str) -> str:
    path = folder / "settings.toml"
    path.write_text(text)
    return str(path)


def test_each_layer_overrides_the_ones_below(tmp_path: Path) -> None:
    default, preset = TrainConfig(), PRESETS["seed"]
    toml = {"z_dim": 3, "epochs": 7}
    flags = {"z_dim": 5}
    # Each layer sets a value the layers below it do not give.
    assert preset["batch_size"] != default.batch_size and preset["model"] != default.model
    assert toml["epochs"] not in (preset["epochs"], default.epochs)
    assert flags["z_dim"] not in (toml["z_dim"], preset["z_dim"], default.z_dim)
    path = _toml(tmp_path, f"[train]\nz-dim = {toml['z_dim']}\nepochs = {toml['epochs']}\n")
    config = _resolved("--preset", "seed", "--config", path, "--z-dim", str(flags["z_dim"]))
    assert config.z_dim == flags["z_dim"]  # flags over the file, the preset and the default
    assert config.epochs == toml["epochs"]  # the file over the preset
    assert (config.model, config.batch_size) == (preset["model"], preset["batch_size"])
    assert (config.beta, config.lr_schedule) == (default.beta, default.lr_schedule)  # unset


def test_a_preset_in_the_file_lies_below_the_file_and_the_preset_flag_replaces_it(
        tmp_path: Path) -> None:
    path = _toml(tmp_path, 'preset = "seed"\nepochs = 7\n')
    from_file = _resolved("--config", path)
    assert (from_file.model, from_file.batch_size) == (PRESETS["seed"]["model"],
                                                       PRESETS["seed"]["batch_size"])
    assert from_file.epochs == 7
    flagged = _resolved("--config", path, "--preset", "mlp")
    assert (flagged.model, flagged.batch_size) == (PRESETS["mlp"]["model"],
                                                   PRESETS["mlp"]["batch_size"])
    assert flagged.epochs == 7


@pytest.mark.parametrize("text", ["z_dim = 3\n", "z-dim = 3\n", "[train]\nz_dim = 3\n"],
                         ids=["top-level", "dashes", "train-table"])
def test_file_keys_may_be_top_level_or_in_train_with_dashes_or_underscores(
        text: str, tmp_path: Path) -> None:
    assert _resolved("--config", _toml(tmp_path, text)).z_dim == 3
