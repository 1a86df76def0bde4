"""The --plugin flag (vaelab.cli.plugins) and an installed plugin, end to end on the command line.

An installed package (a real .dist-info with entry_points.txt on a temporary PYTHONPATH, found
through importlib.metadata) goes through train → evaluate --nll → study →
report → explore, each in a new process and with no flag; the page falls back to precomputed
decodings because its decoder uses LeakyReLU. docs/your-own.md's test does the same for a
plugin file (tests/test_your_own.py). Every command that builds or loads a model takes --plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_plugin, write_plugin_package
from vaelab.cli.main import build_parser, main
from vaelab.models.plugins import AUTOLOAD_OFF

LEAKY = """
from torch import nn
from vaelab.models import from_modules, register_model


class Encoder(nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.LeakyReLU(),
                                 nn.Linear(64, 2 * z_dim))

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


@register_model("leaky", "a pair of modules with LeakyReLU, which the explorer page cannot run")
def leaky(config):
    decoder = nn.Sequential(nn.Linear(config.z_dim, 64), nn.LeakyReLU(), nn.Linear(64, 784),
                            nn.Unflatten(1, (1, 28, 28)))
    return from_modules(Encoder(config.z_dim), decoder, config)
"""

MODEL_COMMANDS = ("train", "evaluate", "reconstruct", "sample", "explore", "study", "report",
                  "runs", "models")


def test_every_command_that_builds_or_loads_a_model_takes_plugin() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in MODEL_COMMANDS:
        options = {o for a in commands.choices[name]._actions for o in a.option_strings}
        assert "--plugin" in options, name
    for name in ("data",):
        assert "--plugin" not in commands.choices[name].format_help(), name


def _vaelab(argv: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")])}
    env.pop(AUTOLOAD_OFF, None)
    done = subprocess.run([sys.executable, "-m", "vaelab", *argv], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, (argv, done.stderr)
    return done


@pytest.mark.slow
def test_an_installed_plugin_goes_through_every_command(tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    site = write_plugin_package(tmp_path / "site", "vaelab_test_leaky", LEAKY,
                                dist="leaky-vae", version="0.3")
    cache = request.config.cache.mkdir("vaelab-classifiers")  # shared with tests/test_study.py
    short = ["--epochs", "1", "--val-size", "500"]  # one epoch of mnist-sample: the suite's time
    trained = _vaelab(["train", "--model", "leaky", "--z-dim", "2", *short, "--out",
                       "runs/leaky"], tmp_path, site)
    assert "trains with autograd" in trained.stderr
    run = tmp_path / "runs" / "leaky"
    assert json.loads((run / "provenance.json").read_text())["model"] == {
        "kind": "module", "module": "vaelab_test_leaky.vae", "distribution": "leaky-vae",
        "version": "0.3", "entry_point": "minimal = vaelab_test_leaky.vae"}

    scored = json.loads(_vaelab(["evaluate", "runs/leaky", "--nll", "--samples", "10",
                                 "--limit", "500", "--json"], tmp_path, site).stdout)
    # The importance-sampled bound is tighter than the ELBO, up to the noise of 10 samples.
    assert 0 < scored["nll"] < scored["neg_elbo"] + 3 * scored["nll_se"]

    _vaelab(["study", "--model", "leaky", "--quick", *short, "--z-dims", "2", "--prior-samples",
             "1000", "--classifier-dir", str(cache), "--out", "study"], tmp_path, site)
    before = (tmp_path / "study" / "report.md").read_text()
    _vaelab(["report", "study"], tmp_path, site)
    report = (tmp_path / "study" / "report.md").read_text()
    assert report == before and "leaky" in report  # the same numbers, measured again

    explored = _vaelab(["explore", "runs/leaky"], tmp_path, site)
    assert "32 × 32 decodings precomputed" in explored.stdout
    assert "cannot run this decoder (it uses LeakyReLU" in explored.stderr
    page = (run / "explorer.html").read_text()
    data = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert data["decoder"]["kind"] == "grid" and data["decoder"]["max_abs_error"] < 2.5e-3


def test_tensorboard_logs_a_plugin_model(tmp_path: Path, train_args: list[str],
                                         plugin_registry: None) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vaelab.trackers.tensorboard import scalar_tag

    plugin = write_plugin(tmp_path, "leaky.py", LEAKY)
    assert main(["train", "--plugin", str(plugin), "--model", "leaky", "--tracker",
                 "tensorboard", *train_args]) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert events.Tags()["images"]  # the picture grids, decoded by the plugin's model
    losses = [event.value for event in events.Scalars(scalar_tag("val_loss"))]
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()]
    assert losses == pytest.approx([r["val_loss"] for r in history])  # one per epoch


def test_a_study_of_a_broken_model_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], plugin_registry: None) -> None:
    plugin = write_plugin(tmp_path, "broken.py", LEAKY.replace(
        "return from_modules(Encoder(config.z_dim), decoder, config)",
        "return from_modules(Encoder(config.z_dim + 1), decoder, config)"))
    code = main(["study", "--plugin", str(plugin), "--model", "leaky", "--quick",
                 "--out", str(tmp_path / "study")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("vaelab: error:") == 1, err
    assert "Encoder (the encoder) returned (8, 2); expected (8, 1) mu" in err  # z_dim 1 first
    assert not (tmp_path / "study").exists()
