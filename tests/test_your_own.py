"""docs/your-own.md runs as written: its plugin file, its commands, its pyproject.toml.

The page's `my_vae.py` is written out and each command of its block runs in a fresh process,
in order, in one folder. For the suite's time, and only that, some commands get flags appended
(later flags override earlier ones): `SHORTER` below is the whole of the change.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_plugin
from vaelab.models.plugins import AUTOLOAD_OFF

PAGE = REPO / "docs" / "your-own.md"

# command -> flags appended to the page's command (one epoch instead of ten, one z_dim of the
# study, fewer importance and prior samples, a small validation split, the suite's classifier
# cache); everything else is the page's.
SHORTER = {
    "train": ["--epochs", "1", "--val-size", "500"],
    "evaluate": ["--samples", "10", "--limit", "500"],
    "study": ["--epochs", "1", "--z-dims", "2", "--prior-samples", "1000", "--val-size", "500"],
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)


def _fresh(argv: list[str], cwd: Path,
           pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(REPO / "src")])}
    env.pop(AUTOLOAD_OFF, None)
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_the_page_has_what_this_test_runs() -> None:
    assert "class MyConvVAE(VAE)" in _blocks("python")[0]
    assert len(_blocks("python")[0].splitlines()) <= 35  # a student's 30-line model
    commands = [line for line in _blocks("bash")[0].splitlines() if line.startswith("vaelab ")]
    assert "vaelab study --plugin my_vae.py --model my-conv --quick --out runs/my-study" in commands
    assert {c.split()[1] for c in commands} >= {"train", "evaluate", "study", "report", "explore"}


@pytest.mark.slow
def test_the_plugin_file_and_its_commands(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / "my_vae.py").write_text(_blocks("python")[0])
    cache = request.config.cache.mkdir("vaelab-classifiers")  # shared with tests/test_study.py
    commands = [line for line in _blocks("bash")[0].splitlines() if line.startswith("vaelab ")]
    outputs = {}
    for command in commands:
        argv = shlex.split(command)
        extra = SHORTER.get(argv[1], [])
        if argv[1] == "study":
            extra = [*extra, "--classifier-dir", str(cache)]
        done = _fresh(["vaelab", *argv[1:], *extra], tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        outputs[argv[1]] = done
    assert "my-conv" in outputs["models"].stdout and "(plugin file)" in outputs["models"].stdout
    run = tmp_path / "runs" / "my-conv"
    provenance = json.loads((run / "provenance.json").read_text())["model"]
    assert provenance["kind"] == "file" and provenance["path"] == str(tmp_path / "my_vae.py")
    assert "trains with autograd" in outputs["train"].stderr
    assert re.search(r"NLL, K=10 \(nats\)\s+\d+\.\d+ ± \d+\.\d+", outputs["evaluate"].stdout)
    study = tmp_path / "runs" / "my-study"
    results = json.loads((study / "results.json").read_text())
    assert results["config"]["train"]["model"] == "my-conv"
    assert (study / "report.html").stat().st_size > 10_000
    page = (run / "explorer.html").read_text()
    decoder = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert decoder["decoder"]["kind"] == "layers"  # my-conv's decoder runs in the page
    assert decoder["decoder"]["max_abs_error"] < 1e-3


def test_the_two_modules_way(tmp_path: Path, plugin_registry: None) -> None:
    import torch

    from vaelab.models import create_model, load_plugin
    from vaelab.models.contract import check_behaviour

    plugin = write_plugin(tmp_path, "my_mlp.py", _blocks("python")[1])
    assert load_plugin(plugin).models == ("my-mlp",)
    model = create_model(name="my-mlp", z_dim=3)
    check_behaviour(model, torch.rand(4, 1, 28, 28))


def test_the_pyproject_snippet_installs_a_plugin_found_with_no_flag(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(_blocks("toml")[0])
    (project / "my_vae.py").write_text(_blocks("python")[0])
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-index", "--no-build-isolation", "--target", str(site),
                              str(project)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    assert list(site.glob("my_vae-0.1.0.dist-info/entry_points.txt"))
    listed = _fresh(["vaelab", "models"], tmp_path, (site,))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("my-conv"))
    assert "my_vae (installed plugin, my-vae 0.1.0)" in row
