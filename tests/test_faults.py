"""Faults during training: kills, signals, a second process, NaNs, hostile checkpoints, full disks.

The kill tests run the real command line in a subprocess (``python -m vaelab train`` with
the tiny test dataset registered by a small launcher) and stop it with real signals.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from vaelab.cli.main import main
from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.models import create_model
from vaelab.runs.checkpoint import read_checkpoint, save_checkpoint
from vaelab.runs.layout import LAST
from vaelab.runs.lock import LOCK_NAME, RunLock
from vaelab.runs.rebuild import build_model, load_run
from vaelab.training import RunOptions, fit

LAUNCHER = '''
import hashlib, os, runpy
from pathlib import Path
from vaelab.data.datasets import DatasetSpec, dataset_registry
from vaelab.data.idx import decompressed_bytes
folder = Path(os.environ["VAELAB_TINY"])
names = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
sums = {k: hashlib.sha256(decompressed_bytes(folder / (v + ".gz"))).hexdigest()
        for k, v in names.items()}
dataset_registry.add("tiny", DatasetSpec(name="tiny", description="test data", sha256=sums))
runpy.run_module("vaelab", run_name="__main__", alter_sys=True)
'''


class Trainer:
    """Launches ``vaelab train`` on the tiny dataset as a real process."""

    def __init__(self, tmp_path: Path, data_dir: Path) -> None:
        self.launcher = tmp_path / "launch_vaelab.py"
        self.launcher.write_text(LAUNCHER)
        self.data_dir = data_dir
        self.env = {**os.environ, "VAELAB_TINY": str(data_dir / "tiny"), "PYTHONUNBUFFERED": "1"}
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.count = 0

    def args(self, out: Path, **extra: Any) -> list[str]:
        flags = {"dataset": "tiny", "data_dir": str(self.data_dir), "epochs": 2, "batch_size": 32,
                 "z_dim": 2, "device": "cpu", "checkpoint_every": 1, "out": str(out), **extra}
        return [x for k, v in flags.items() for x in ("--" + k.replace("_", "-"), str(v))]

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        self.count += 1
        self.stderr = self.logs / f"{self.count}.err"
        with self.stderr.open("wb") as err:
            return subprocess.Popen([sys.executable, str(self.launcher), "train", *argv],
                                    env=self.env, stdout=subprocess.DEVNULL, stderr=err)

    def launch(self, out: Path) -> subprocess.Popen[bytes]:
        """Start a new run in ``out``, or resume it when it holds a checkpoint."""
        argv = ["--resume", str(out)] if (out / LAST).exists() else self.args(out)
        return self.start(argv)

    def err(self) -> str:
        return self.stderr.read_text()


def _progress(run: Path) -> tuple[int, int, int] | None:
    """(epoch, step, global_step) of the last complete checkpoint, or None."""
    try:
        with safe_open(str(run / LAST), framework="pt") as fh:
            state = json.loads(fh.metadata()["state"])
    except Exception:  # absent, or unreadable for a moment
        return None
    return state["epoch"], state["step"], state["global_step"]


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], limit: float = 60.0,
              poll: float = 0.002) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    raise AssertionError("the training did not get there in time")


def _temps(run: Path, prefix: str = ".") -> list[str]:
    return sorted(p.name for p in run.glob(f"{prefix}*.tmp"))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("rng.")}


def _metrics(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture
def trainer(tmp_path: Path, tiny_dataset_dir: Path) -> Trainer:
    return Trainer(tmp_path, tiny_dataset_dir)


@pytest.mark.slow
def test_kills_at_random_points_resume_bit_identical(trainer: Trainer, tiny_dataset: str,
                                                     tmp_path: Path) -> None:
    """kill -9 (also mid-write), SIGTERM, SIGINT and a double Ctrl-C, then resume each time.

    Each kill lands at a random step (the run checkpoints every step); the run is resumed
    after each and must end bit-identical to an uninterrupted run.
    """
    reference = tmp_path / "reference"
    # The uninterrupted run, in this process: the same code and settings as Trainer.args.
    fit(TrainConfig(dataset=tiny_dataset, data_dir=str(trainer.data_dir), epochs=2,
                    batch_size=32, z_dim=2, device="cpu", checkpoint_every=1,
                    out=str(reference)), RunOptions(pictures=False))

    run = tmp_path / "run"
    rng = random.Random(7)
    total = 2 * 17  # 540 training images in batches of 32, two epochs
    # One random step in each sixth of the run, so the kills spread over both epochs.
    bins = [range(2 + i * (total - 3) // 6, 2 + (i + 1) * (total - 3) // 6) for i in range(6)]
    targets = iter([rng.choice(b) for b in bins])
    kills: list[dict[str, Any]] = []

    def reached(target: int) -> Callable[[], bool]:
        return lambda: (_progress(run) or (0, 0, 0))[2] >= target

    # 1. kill -9 during start-up, before any checkpoint exists.
    proc = trainer.launch(run)
    time.sleep(rng.uniform(0.2, 0.8))
    proc.kill()
    proc.wait()
    kills.append({"how": "SIGKILL at start-up", "checkpoint": _progress(run)})

    # 2. kill -9 at a random step.
    proc = trainer.launch(run)
    _wait_for(reached(next(targets)), proc)
    time.sleep(rng.uniform(0, 0.05))
    proc.kill()
    proc.wait()
    assert (run / LOCK_NAME).exists()  # the dead holder's lock file survives ...
    kills.append({"how": "SIGKILL at a random step", "checkpoint": _progress(run)})

    # 3. kill -9 while a checkpoint is being written (its temp file exists).
    caught = False
    for _ in range(5):
        proc = trainer.launch(run)  # ... and does not stop the next run
        target = next(targets, None)
        if target is not None:
            _wait_for(reached(target), proc)
        if not _wait_for(lambda: bool(_temps(run, ".last.safetensors.")), proc):
            break
        proc.kill()
        proc.wait()
        caught = bool(_temps(run, ".last.safetensors."))
        read_checkpoint(run / LAST)  # the previous checkpoint is complete and readable
        kills.append({"how": "SIGKILL during checkpoint write", "temp_left": caught,
                      "checkpoint": _progress(run)})
        if caught:
            break
    assert caught, "never caught a checkpoint write in progress"

    # 4. SIGTERM and 5. SIGINT: stop after the current step, save, exit 143 / 130.
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = trainer.launch(run)
        before = _progress(run)
        _wait_for(lambda b=before: _progress(run) != b, proc)  # training, not loading
        _wait_for(reached(next(targets, 0)), proc)
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code, trainer.err()
        assert "--resume" in trainer.err() and "Traceback" not in trainer.err()
        kills.append({"how": sig.name, "exit": code, "checkpoint": _progress(run)})

    # 6. Ctrl-C twice in a row: abort at once, still exit 130 with an intact checkpoint.
    proc = trainer.launch(run)
    before = _progress(run)
    _wait_for(lambda: _progress(run) != before, proc)  # training, not loading
    _wait_for(reached(next(targets, 0)), proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, trainer.err()
    assert "Traceback" not in trainer.err()
    kills.append({"how": "SIGINT twice", "exit": 130, "checkpoint": _progress(run)})

    # Finish the run; it must end exactly where the uninterrupted one did.
    proc = trainer.launch(run)
    assert proc.wait(timeout=300) == 0, trainer.err()
    assert not _temps(run) and not (run / LOCK_NAME).exists()
    assert (run / "samples.png").is_file()
    for name in ("last.safetensors", "best.safetensors"):
        ours, ref = _tensors(run / name), _tensors(reference / name)
        assert ours.keys() == ref.keys()
        for key in ref:
            assert torch.equal(ours[key], ref[key]), (name, key)
    assert _metrics(run) == _metrics(reference)
    assert len(kills) >= 6
    print("\nkill points:", *kills, sep="\n  ")


# Every schedule that moves the rate (the constant one is the test above), as in
# test_lr_schedule.py; plateau's rate is too small to improve the loss, so it cuts.
KILLED_SCHEDULES: dict[str, dict[str, Any]] = {
    "burda": {"lr_schedule": "burda"},
    "cosine": {"lr_schedule": "cosine", "lr_warmup": 1, "lr_min": 1e-4},
    "step": {"lr_schedule": "step", "lr_step_every": 1, "lr_gamma": 0.5},
    "plateau": {"lr_schedule": "plateau", "lr_patience": 0, "lr_gamma": 0.5, "lr": 3e-8},
}


@pytest.mark.slow
@pytest.mark.parametrize("schedule", list(KILLED_SCHEDULES))
def test_kill_9_resumes_every_schedule_bit_identically(schedule: str, trainer: Trainer,
                                                       tiny_dataset: str,
                                                       tmp_path: Path) -> None:
    """kill -9 at a random step of `vaelab train` with a learning-rate schedule, then resume.

    The resume runs in this process (the command line's --resume is the test above).
    """
    settings = KILLED_SCHEDULES[schedule]

    def config(out: Path) -> TrainConfig:
        return TrainConfig(dataset=tiny_dataset, data_dir=str(trainer.data_dir), epochs=2,
                           batch_size=32, z_dim=2, device="cpu", checkpoint_every=1,
                           out=str(out), **settings)

    reference = tmp_path / "reference"
    fit(config(reference), RunOptions(pictures=False))
    run = tmp_path / "run"
    target = random.Random(schedule).randrange(3, 2 * 17 - 2)  # a step of either epoch
    proc = trainer.start(trainer.args(run, **settings))
    _wait_for(lambda: (_progress(run) or (0, 0, 0))[2] >= target, proc)
    proc.kill()
    proc.wait()
    killed_at = _progress(run)
    assert killed_at is not None and killed_at[2] < 2 * 17, killed_at  # it died mid-run
    fit(config(run), RunOptions(resume=True, pictures=False))
    for name in ("last.safetensors", "best.safetensors"):
        ours, ref = _tensors(run / name), _tensors(reference / name)
        assert ours.keys() == ref.keys()
        for key in ref:
            assert torch.equal(ours[key], ref[key]), (name, key)
    assert read_checkpoint(run / LAST).schedule_state == \
        read_checkpoint(reference / LAST).schedule_state
    assert _metrics(run) == _metrics(reference)
    state = read_checkpoint(run / LAST).schedule_state
    assert state is not None and state["scheduler"]["_last_lr"][0] < settings.get("lr", 1e-3)


def test_second_process_on_one_run_dir_is_refused(trainer: Trainer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = trainer.start(trainer.args(run, epochs=1000, checkpoint_every=0))
    try:
        _wait_for(lambda: (run / LOCK_NAME).exists() and (run / LOCK_NAME).stat().st_size > 0,
                  first)
        holder = json.loads((run / LOCK_NAME).read_text())
        assert holder["pid"] == first.pid
        second = trainer.start(trainer.args(run, epochs=1000, checkpoint_every=0))
        assert second.wait(timeout=120) == 2
        err = trainer.err()
        assert "in use by another training" in err and f"pid {first.pid}" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)


def test_run_lock_in_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunLock(run) as lock:
        assert lock.held and (run / LOCK_NAME).exists()
        with pytest.raises(VaelabError, match=f"pid {os.getpid()}"):
            RunLock(run).acquire()
    assert not run.exists()  # the lock made the folder and, left empty, removed it again
    run.mkdir()
    # A lock file left by a process that no longer exists is stale and taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    (run / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": os.uname().nodename,
                                             "started": time.time()}))
    with RunLock(run) as lock:
        assert lock.stale is not None and lock.stale.pid == pid
    # A run that fails before writing anything leaves no directory behind.
    with RunLock(tmp_path / "a" / "b"):
        pass
    assert not (tmp_path / "a").exists()


def _config(tiny_dataset: str, data_dir: Path, out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(dataset=tiny_dataset, data_dir=str(data_dir), epochs=2,
                                batch_size=64, z_dim=4, device="cpu", out=str(out))
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("every", [0, 1])
def test_nan_stops_naming_epoch_and_step(tiny_dataset: str, tiny_dataset_dir: Path,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         every: int) -> None:
    import vaelab.training.epoch as train_module

    real = train_module.kl_weight

    def poisoned(config: TrainConfig, epoch: int, step: int, steps: int) -> float:
        # The 5th step of the 2nd epoch gets a NaN loss.
        return float("nan") if (epoch, step) == (1, 4) else real(config, epoch, step, steps)

    monkeypatch.setattr(train_module, "kl_weight", poisoned)
    run = tmp_path / "run"
    config = _config(tiny_dataset, tiny_dataset_dir, run, checkpoint_every=every)
    with pytest.raises(VaelabError) as info:
        fit(config, RunOptions(pictures=False))
    message = str(info.value)
    assert "epoch 2, step 5" in message and "--lr" in message and "--grad-clip" in message
    assert str(run / LAST) in message
    ckpt = read_checkpoint(run / LAST)
    assert ckpt.state is not None
    assert (ckpt.state.epoch, ckpt.state.step) == ((1, 4) if every else (1, 0))
    assert all(torch.isfinite(t).all() for t in ckpt.model_state.values())
    best = read_checkpoint(run / "best.safetensors")
    assert best.state is not None and best.state.epoch == 1
    assert not (run / LOCK_NAME).exists()


def test_nan_via_cli_is_one_line(train_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *train_args, "--lr", "1e30"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "NaN or infinite at epoch 1, step" in errors[0] and "--grad-clip" in errors[0], err


class _Marker:
    """Unpickling this creates a file: proof that the pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_crafted_pickle_is_never_executed(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "executed"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    payloads = {"pickle": pickle.dumps({"model": _Marker(marker)})}
    torch.save({"model": _Marker(marker)}, tmp_path / "zip.pt")
    payloads["torch.save"] = (tmp_path / "zip.pt").read_bytes()
    assert not marker.exists()
    for kind, payload in payloads.items():
        for name in ("last.safetensors", "best.safetensors"):
            (run / name).write_bytes(payload)
        with pytest.raises(VaelabError, match="never unpickles"):
            read_checkpoint(run / "last.safetensors")
        with pytest.raises(VaelabError, match="never unpickles"):
            load_run(run)
        assert main(["evaluate", str(run)]) == 2
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert "never unpickles" in err and "Traceback" not in err, (kind, err)
        assert not marker.exists(), kind


def _rewrite(src: Path, dst: Path, meta: Callable[[dict[str, str]], None] | None = None,
             tensors: Callable[[dict[str, torch.Tensor]], None] | None = None) -> Path:
    with safe_open(str(src), framework="pt") as fh:
        metadata = dict(fh.metadata())
    data = load_file(str(src))
    if meta:
        meta(metadata)
    if tensors:
        tensors(data)
    dst.write_bytes(save(data, metadata=metadata))
    return dst


def test_checkpoint_that_does_not_match_its_config_is_refused(tmp_path: Path) -> None:
    model = create_model(name="mlp", z_dim=3)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 28, 28)).loss.backward()
    optimizer.step()
    good = tmp_path / "good.safetensors"
    from vaelab.runs.checkpoint import TrainState

    save_checkpoint(good, model, TrainConfig(model="mlp", z_dim=3), TrainState(), optimizer)
    build_model(read_checkpoint(good))  # the original is fine

    def model_config(**changes: Any) -> Callable[[dict[str, str]], None]:
        def edit(meta: dict[str, str]) -> None:
            meta["model_config"] = json.dumps({**json.loads(meta["model_config"]), **changes})
            meta["config"] = json.dumps({**json.loads(meta["config"]),
                                         **{("model" if k == "name" else k): v
                                            for k, v in changes.items() if k in ("name", "z_dim")}})
        return edit

    cases = {
        "z_dim": (model_config(z_dim=5), None, "do not match"),
        "huge z_dim": (model_config(z_dim=10**9), None, "4096"),
        "unknown model": (model_config(name="gpt5"), None, "unknown model 'gpt5'"),
        "other model": (model_config(name="seed"), None, "do not match"),
        "image shape": (model_config(image_shape=[1, 100000, 100000]), None, "do not match"),
        "config disagrees": (lambda m: m.update(config=json.dumps(
            {**json.loads(m["config"]), "z_dim": 7})), None, "inconsistent"),
        "dtype": (None, lambda t: t.update({k: v.double() for k, v in t.items()
                                            if k.startswith("model.")}), "dtype"),
        "int weights": (None, lambda t: t.update({"model.to_logits.bias":
                                                  torch.zeros(784, dtype=torch.int32)}), "dtype"),
        "dropped tensor": (None, lambda t: t.pop("model.to_logits.bias"), "missing"),
        "optimizer shape": (None, lambda t: t.update({"optim.0.exp_avg": torch.zeros(3)}),
                            "optimizer state"),
        "rng": (None, lambda t: t.update({"rng.cpu": torch.zeros(5, dtype=torch.uint8)}), "rng"),
        "format": (lambda m: m.update(format="other"), None, "not a vaelab checkpoint"),
        "state": (lambda m: m.update(state='{"epoch": "x"}'), None, "damaged"),
    }
    for name, (meta, tensors, expected) in cases.items():
        path = _rewrite(good, tmp_path / f"{name}.safetensors", meta, tensors)
        with pytest.raises(VaelabError, match=expected):
            build_model(read_checkpoint(path))


def test_unwritable_output_fails_before_training(train_args: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = train_args.index("--out") + 1
    args = [*train_args[:out], str(blocker / "run"), *train_args[out + 1:]]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run directory" in err and "--out" in err, err


def test_too_little_free_space_fails_before_training(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: real(p)._replace(free=1_000_000))
    run = tmp_path / "run"
    with pytest.raises(VaelabError, match=r"1\.0 MB free but writing the checkpoints needs"):
        fit(_config(tiny_dataset, tiny_dataset_dir, run), RunOptions(pictures=False))
    assert not (run / LAST).exists()


class _FillAfterFirstEpoch:
    """A progress hook that fills the disk once the first epoch's checkpoint is written."""

    def __init__(self, run: Path, fill: Callable[[], None]) -> None:
        self.run, self.fill, self.saved = run, fill, b""

    def epoch_start(self, *args: Any) -> None: ...
    def step(self, loss: float | None) -> None: ...

    def epoch_end(self, record: dict[str, Any]) -> None:
        if not self.saved:
            self.saved = (self.run / LAST).read_bytes()
            self.fill()


def _assert_full_disk_handled(run: Path, hook: _FillAfterFirstEpoch, config: TrainConfig) -> None:
    with pytest.raises(VaelabError, match="no space left") as info:
        fit(config, RunOptions(progress=hook, pictures=False))
    assert len(str(info.value).splitlines()) == 1
    assert (run / LAST).read_bytes() == hook.saved  # the previous checkpoint is intact
    state = read_checkpoint(run / LAST).state
    assert state is not None and state.epoch == 1
    assert not _temps(run)


def test_disk_full_at_a_write_keeps_previous_checkpoint(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated: every rename into place fails with ENOSPC after the first epoch."""
    import vaelab.runs.atomic

    run = tmp_path / "run"

    def fill() -> None:
        def no_space(*args: Any, **kw: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(vaelab.runs.atomic.os, "replace", no_space)

    hook = _FillAfterFirstEpoch(run, fill)
    _assert_full_disk_handled(run, hook, _config(tiny_dataset, tiny_dataset_dir, run))


def test_disk_full_on_a_real_tmpfs(tiny_dataset: str, tiny_dataset_dir: Path,
                                   tmp_path: Path) -> None:
    """A real full file system: a small tmpfs, filled up after the first epoch."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs",
                                            str(mount)], capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        run = mount / "run"

        def fill() -> None:
            with (mount / "filler").open("wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * (1 << 20))
                        fh.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC

        hook = _FillAfterFirstEpoch(run, fill)
        _assert_full_disk_handled(run, hook, _config(tiny_dataset, tiny_dataset_dir, run))
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_stale_temp_files_are_removed_on_resume(tiny_dataset: str, tiny_dataset_dir: Path,
                                                tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit(_config(tiny_dataset, tiny_dataset_dir, run, epochs=1), RunOptions(pictures=False))
    leftover = run / ".last.safetensors.k1ll3d.tmp"
    leftover.write_bytes(b"half a checkpoint")
    assert read_checkpoint(run / LAST).state is not None  # readers ignore it
    fit(_config(tiny_dataset, tiny_dataset_dir, run, epochs=2), RunOptions(resume=True,
                                                                           pictures=False))
    assert not leftover.exists()
