"""Plugins (vaelab.models.plugins): files, modules and installed packages; what a run remembers.

Loading: a plugin file or module registers its models, attributed to it; an installed package
is found through importlib.metadata with no flag, and only when models are needed. Every
failure is one line naming the plugin. Runs: a run without its plugin names the flag that
supplies it; a run directory never causes code to be imported, even one naming `os` or a module
with side effects; a plugin file changed since training warns once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OLD_STUDY, REPO, write_plugin, write_plugin_package
from vaelab.cli.main import main
from vaelab.errors import VaelabError
from vaelab.models import ModelOrigin, load_plugin, model_registry
from vaelab.models import plugins as plugins_module
from vaelab.models.plugins import ENTRY_POINT_GROUP, load_installed, require_model

pytestmark = pytest.mark.usefixtures("plugin_registry")

MINIMAL = """
from torch import nn
from vaelab.models import ModelConfig, from_modules, register_model


class Encoder(nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(),
                                 nn.Linear(32, 2 * z_dim))

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


@register_model("{name}", "a minimal pair of modules")
def build(config: ModelConfig):
    decoder = nn.Sequential(nn.Linear(config.z_dim, 32), nn.ReLU(), nn.Linear(32, 784),
                            nn.Unflatten(1, (1, 28, 28)))
    return from_modules(Encoder(config.z_dim), decoder, config)
"""


def _minimal(name: str) -> str:
    return MINIMAL.replace("{name}", name)


def _one_line(capsys: pytest.CaptureFixture[str], *parts: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, (part, err)
    return err


# --- loading ----------------------------------------------------------------------------------

def test_a_plugin_file_registers_its_models_once(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "mine.py", _minimal("mine"))
    plugin = load_plugin(str(path))
    assert plugin.models == ("mine",)
    origin = model_registry.get("mine").origin
    assert origin is plugin.origin and origin.kind == "file"
    assert origin.path == str(path.resolve())
    assert origin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_plugin(path) is plugin  # again: nothing is imported or registered twice
    # Edited (in a notebook, say): loading it again replaces its models with the new code.
    path.write_text(_minimal("mine").replace("a minimal pair", "an edited pair"))
    edited = load_plugin(path)
    assert edited.origin.sha256 != origin.sha256
    assert model_registry.get("mine").summary.startswith("an edited pair")


def test_a_plugin_module_is_imported_by_name(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "vaelab_test_mod"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_plugin(package, "vae.py", _minimal("by-module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = load_plugin("vaelab_test_mod.vae")
    assert plugin.models == ("by-module",)
    assert plugin.origin == ModelOrigin("module", module="vaelab_test_mod.vae")


def test_an_installed_package_is_found_by_its_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin_package(tmp_path, "vaelab_test_ep", _minimal("installed"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins_module.AUTOLOAD_OFF, raising=False)
    import importlib.metadata

    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert [p.value for p in points] == ["vaelab_test_ep.vae"]
    (plugin,) = load_installed()
    assert plugin.models == ("installed",)
    origin = model_registry.get("installed").origin
    assert origin == ModelOrigin("module", module="vaelab_test_ep.vae",
                                 distribution="vaelab-test-pkg", version="1.2.3",
                                 entry_point="minimal = vaelab_test_ep.vae")
    monkeypatch.setenv(plugins_module.AUTOLOAD_OFF, "1")
    assert load_installed() == []


def _fresh(code: str, pythonpath: list[Path], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    paths = [str(p) for p in pythonpath] + [str(REPO / "src")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1",
                   **env}
    environment.pop(plugins_module.AUTOLOAD_OFF, None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=300)


def test_installed_plugins_load_only_when_models_are_needed(tmp_path: Path) -> None:
    """`vaelab --help` and commands without models import no plugin; `vaelab models` does."""
    source = _minimal("marked") + "\nopen(__import__('os').environ['MARK'], 'w').close()\n"
    write_plugin_package(tmp_path / "site", "vaelab_test_marked", source)
    mark = tmp_path / "imported"
    for argv, imported in ((["--help"], False), (["data", "list"], False),
                           (["models"], True)):
        mark.unlink(missing_ok=True)
        code = ("import contextlib, io\nfrom vaelab.cli.main import main\n"
                "with contextlib.redirect_stdout(io.StringIO()), "
                "contextlib.suppress(SystemExit):\n"
                f"    main({argv!r})\n")
        out = _fresh(code, [tmp_path / "site"], tmp_path, MARK=str(mark))
        assert out.returncode == 0, out.stderr
        assert mark.exists() == imported, argv


def test_models_lists_where_each_model_comes_from(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plugin(tmp_path, "mine.py", _minimal("mine"))
    assert main(["models", "--plugin", str(path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "(plugin file)" in rows["mine"] and "mine.py" in rows["mine"]
    assert rows["conv"].split()[1] == "vaelab"


# --- a plugin that fails: one line each -------------------------------------------------------

BROKEN = {
    "missing file": (None, ["--plugin nowhere.py: no such file"]),
    "not a module name": ("-", ["neither a .py file nor a module name"]),
    "no such module": ("vaelab_test_absent.vae",
                       ["no module named 'vaelab_test_absent'", "install its package"]),
    "import error": ("from torch import nn\nlayer = nn.Lineer(2, 2)\n",
                     ["importing it raised AttributeError", "Lineer", "broken.py:2)"]),
    "syntax error": ("def build(config)\n    pass\n", ["SyntaxError", "broken.py:1)"]),
    "no models": ("x = 1\n", ["it registered no models", "register_model(name, summary)"]),
    "name of vaelab's": (_minimal("conv"),
                         ["model 'conv' is registered twice: by ", "conv.py:", "(vaelab ",
                          "broken.py:", "(the plugin file ", "give one of them another name"]),
    "unusable name": (_minimal("my conv"), ["model name 'my conv' is not usable"]),
    "exits": ("raise SystemExit(3)\n", ["importing it raised SystemExit: 3"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_one_line(case: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    source, parts = BROKEN[case]
    monkeypatch.chdir(tmp_path)
    if source is None:
        spec = "nowhere.py"
    elif case in ("not a module name", "no such module"):
        spec = source
    else:
        spec = str(write_plugin(tmp_path, "broken.py", source))
    assert main(["models", "--plugin", spec]) == 2
    _one_line(capsys, f"--plugin {spec}", *parts)
    assert sorted(model_registry.names()) == sorted(  # a failed plugin leaves nothing behind
        n for n, e in model_registry.entries().items() if e.origin and e.origin.kind == "vaelab")


def test_two_plugins_registering_one_name_are_both_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write_plugin(tmp_path, "first.py", _minimal("same"))
    second = write_plugin(tmp_path, "second.py", _minimal("same"))
    assert main(["models", "--plugin", str(first), "--plugin", str(second)]) == 2
    _one_line(capsys, "model 'same' is registered twice", f"{first}:", f"{second}:")


def test_a_broken_installed_plugin_names_its_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin_package(tmp_path, "vaelab_test_bad_ep", "import nothing_at_all\n",
                         dist="vaelab-test-bad", version="0.1")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins_module.AUTOLOAD_OFF, raising=False)
    with pytest.raises(VaelabError) as info:
        load_installed()
    message = str(info.value)
    assert "\n" not in message
    for part in ("the installed plugin minimal = vaelab_test_bad_ep.vae", "vaelab-test-bad 0.1",
                 "ModuleNotFoundError", "nothing_at_all", "VAELAB_DISABLE_PLUGIN_AUTOLOAD=1"):
        assert part in message, (part, message)


# --- runs remember their plugin ---------------------------------------------------------------

def test_a_run_without_its_plugin_names_the_flag() -> None:
    file = {"kind": "file", "path": "/home/student/my_vae.py", "sha256": "ab" * 32}
    module = {"kind": "module", "module": "their_pkg.vae", "distribution": "their-pkg",
              "version": "2.0"}
    with pytest.raises(VaelabError, match=r"^runs/a: its model 'mine' comes from the plugin file "
                       r"/home/student/my_vae.py, which is not loaded; pass --plugin "
                       r"/home/student/my_vae.py \(in Python"):
        require_model("mine", file, "runs/a")
    with pytest.raises(VaelabError, match=r"the module their_pkg.vae \(their-pkg 2.0\), which "
                       r"is not loaded; install their-pkg, or pass --plugin their_pkg.vae$"):
        require_model("theirs", module, "runs/b")
    with pytest.raises(VaelabError, match=r"unknown model 'old' .* pass --plugin FILE.py or "
                       r"MODULE$"):
        require_model("old", None, "runs/c")  # a run that records nothing (another tool's)


def test_hostile_records_are_only_ever_words() -> None:
    """Control characters cannot break the one line; non-strings and odd kinds are dropped."""
    origin = ModelOrigin.from_record({"kind": "module", "module": "os\nvaelab: ok",
                                      "version": ["1"], "path": "x" * 1000})
    assert origin is not None and origin.module == "os?vaelab: ok" and origin.version is None
    assert origin.path is not None and len(origin.path) < 310
    assert ModelOrigin.from_record({"kind": "exec", "module": "os"}) is None
    assert ModelOrigin.from_record("os") is None


class _Notices:
    """What the notice logger said, as the CLI would show it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import logging

        from vaelab.notice import NOTICE_LOGGER

        self.records: list[str] = []
        logger = logging.getLogger(NOTICE_LOGGER)
        handler = logging.Handler()
        handler.emit = lambda record: self.records.append(record.getMessage())  # type: ignore
        monkeypatch.setattr(logger, "handlers", [handler])
        monkeypatch.setattr(logger, "level", logging.INFO)


def test_a_changed_plugin_file_warns_once(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_plugin(tmp_path, "mine.py", _minimal("mine"))
    trained = load_plugin(path).origin.to_dict()
    notices = _Notices(monkeypatch)
    require_model("mine", trained, "runs/a")
    assert notices.records == []  # the same bytes: nothing to say
    path.write_text(_minimal("mine") + "\n# tuned\n")
    load_plugin(path)
    for run in ("runs/a", "runs/b", "runs/c"):
        require_model("mine", trained, run)
    (warning,) = notices.records
    assert f"{path.resolve()} changed since it was trained" in warning
    assert trained["sha256"][:12] in warning and "runs/a" in warning


# --- a run directory never imports code -------------------------------------------------------

SIDE_EFFECT = "open(__import__('os').environ['MARK'], 'w').close()\n"


def _hostile_run(tmp_path: Path, name: str, origin: dict[str, str], tiny_dataset: str,
                 tiny_dataset_dir: Path) -> Path:
    """A trained run rewritten to claim model ``name`` from ``origin`` in every file."""
    import safetensors.torch

    from vaelab.config import TrainConfig
    from vaelab.runs.layout import RunDir
    from vaelab.training import RunOptions, fit

    run = RunDir(tmp_path / f"run-{name}")
    fit(TrainConfig(model="mlp", z_dim=2, dataset=tiny_dataset, data_dir=str(tiny_dataset_dir),
                    epochs=1, batch_size=200, device="cpu", out=str(run)),
        RunOptions(pictures=False))
    for path in (run.best, run.last):
        tensors = safetensors.torch.load_file(path)
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            metadata = json.loads(fh.read(size))["__metadata__"]
        config = {**json.loads(metadata["config"]), "model": name}
        metadata.update(config=json.dumps(config), model_origin=json.dumps(origin),
                        model_config=json.dumps({**json.loads(metadata["model_config"]),
                                                 "name": name}))
        safetensors.torch.save_file(tensors, path, metadata=metadata)
    run.write_config({**run.read_config(), "model": name})
    run.record_provenance("model", origin)
    return run.path


def test_a_hostile_run_directory_never_imports_code(
        tmp_path: Path, tiny_dataset: str, tiny_dataset_dir: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "vaelab_test_side_effect.py").write_text(SIDE_EFFECT)
    mark = tmp_path / "imported"
    runs = {
        "evil": _hostile_run(tmp_path, "evil", {"kind": "module",
                                                "module": "vaelab_test_side_effect"},
                             tiny_dataset, tiny_dataset_dir),
        "os": _hostile_run(tmp_path, "os", {"kind": "module", "module": "os",
                                            "distribution": "python"},
                           tiny_dataset, tiny_dataset_dir),
        "file": _hostile_run(tmp_path, "evil-file", {
            "kind": "file", "path": str(site / "vaelab_test_side_effect.py")},
            tiny_dataset, tiny_dataset_dir),
    }
    commands = []
    for run in runs.values():
        commands += [["evaluate", str(run)], ["explore", str(run)], ["sample", str(run)],
                     ["reconstruct", str(run)], ["train", "--resume", str(run)],
                     ["evaluate", str(run), "--plugin", str(tmp_path / "unrelated.py")]]
    write_plugin(tmp_path, "unrelated.py", _minimal("unrelated"))
    code = f"""
import contextlib, io, json, sys
from vaelab.cli.main import main
import vaelab
codes, errors = [], []
for argv in {commands!r}:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        codes.append(main(argv))
    errors.append(err.getvalue())
for run in {[str(r) for r in runs.values()]!r}:
    try:
        vaelab.load(run)
    except vaelab.VaelabError as exc:
        errors.append(str(exc) + "\\n")
        codes.append(2)
print(json.dumps({{"codes": codes, "errors": errors,
                  "imported": "vaelab_test_side_effect" in sys.modules}}))
"""
    out = _fresh(code, [site], tmp_path, MARK=str(mark))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert set(result["codes"]) == {2}
    for error in result["errors"]:
        assert error.count("\n") == 1 and "which is not loaded" in error, error
    assert any("the module vaelab_test_side_effect" in e and "--plugin vaelab_test_side_effect"
               in e for e in result["errors"])
    assert any("the module os (python" in e for e in result["errors"])
    assert not result["imported"] and not mark.exists()
    # `vaelab runs` lists them and names the plugins, importing nothing either.
    listing = _fresh(f"from vaelab.cli.main import main; main(['runs', {str(tmp_path)!r}])",
                     [site], tmp_path, MARK=str(mark))
    assert listing.returncode == 0 and not mark.exists()
    assert listing.stdout.count("which is not loaded") == 3


def _sample_run(tmp_path: Path, plugin: Path, train_args: list[str]) -> Path:
    assert main(["train", "--plugin", str(plugin), "--model", "mine", *train_args]) == 0
    return tmp_path / "run"


def test_a_run_records_its_plugin_and_loads_with_it(
        tmp_path: Path, train_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from vaelab.runs.checkpoint import read_checkpoint
    from vaelab.runs.layout import RunDir

    plugin = write_plugin(tmp_path, "mine.py", _minimal("mine"))
    run = RunDir(_sample_run(tmp_path, plugin, train_args))
    recorded = run.read_provenance()["model"]
    assert recorded == {"kind": "file", "path": str(plugin.resolve()),
                        "sha256": hashlib.sha256(plugin.read_bytes()).hexdigest(),
                        "module": recorded["module"]}
    assert read_checkpoint(run.best).model_origin == recorded  # one file says it too
    # The step it took is said on one line: no written-out gradient for a user's model.
    err = capsys.readouterr().err
    assert "trains with autograd" in err and "not a plain fully connected VAE" in err
    assert main(["sample", str(run.path), "--plugin", str(plugin)]) == 0
    assert main(["train", "--resume", str(run.path), "--epochs", "3", "--plugin",
                 str(plugin)]) == 0
    assert len(run.read_metrics()) == 3
    capsys.readouterr()
    # A new process without the plugin is told which flag supplies it.
    plugins_module._loaded.clear()
    model_registry.discard("mine")
    assert main(["sample", str(run.path)]) == 2
    _one_line(capsys, f"its model 'mine' comes from the plugin file {plugin.resolve()}",
              f"pass --plugin {plugin.resolve()}")
    assert main(["train", "--resume", str(run.path), "--epochs", "3"]) == 2
    _one_line(capsys, "which is not loaded")


def test_old_checkpoints_load_as_before() -> None:
    """A checkpoint of vaelab 0.1.0 records no origin; its built-in model loads."""
    old = OLD_STUDY / "z2" / "best.safetensors"
    if not old.is_file():
        pytest.skip(f"{old} not available")
    from vaelab.runs.checkpoint import read_checkpoint
    from vaelab.runs.rebuild import build_model

    checkpoint = read_checkpoint(old)
    assert checkpoint.model_origin is None
    assert build_model(checkpoint).config.name == "seed"


@pytest.mark.slow
def test_the_python_api_with_a_plugin_in_new_processes(tmp_path: Path) -> None:
    """load_plugin, fit, load, evaluate, the likelihood and the explorer, from Python."""
    plugin = write_plugin(tmp_path, "mine.py", _minimal("mine"))
    run = tmp_path / "run"
    code = f"""
import vaelab, vaelab.models
vaelab.models.load_plugin({str(plugin)!r})
config = vaelab.TrainConfig(model="mine", z_dim=2, epochs=1, val_size=200, device="cpu",
                            out={str(run)!r})
vaelab.fit(config)
"""
    trained = _fresh(code, [], tmp_path)
    assert trained.returncode == 0, trained.stderr
    measure = f"""
import json, torch, vaelab, vaelab.models
from vaelab.data import load_splits
from vaelab.evaluation.likelihood import estimate_nll
from vaelab.explore import write_explorer
try:
    vaelab.load({str(run)!r})
except vaelab.VaelabError as exc:
    refused = str(exc)
vaelab.models.load_plugin({str(plugin)!r})
loaded = vaelab.load({str(run)!r})
images = torch.from_numpy(load_splits("mnist-sample").test_images[:300])
metrics = vaelab.evaluate(loaded.model, images)
nll = estimate_nll(loaded.model, images, samples=5, seed=0)
page = write_explorer({str(run)!r})
print(json.dumps({{"refused": refused, "neg_elbo": metrics["neg_elbo"], "nll": nll.nll,
                  "kind": page.decoder_kind}}))
"""
    done = _fresh(measure, [], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert "comes from the plugin file" in result["refused"]
    assert 0 < result["nll"] < result["neg_elbo"] + 5 and result["kind"] == "layers"
