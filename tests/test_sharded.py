from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from vaelab.config import TrainConfig
from vaelab.training import RunOptions, fit
from vaelab.training.sharded import ShardedNoise, launched, shard_bounds

# 540 training images at batch 63: eight full batches split 32/31 and a last batch of 36; the
# rate halves after every epoch, so the ranks follow the run's learning-rate schedule too.
_SETTINGS = dict(epochs=2, batch_size=63, z_dim=4, device="cpu", binarize="dynamic",
                 lr_schedule="step", lr_step_every=1, lr_gamma=0.5)


def _config(dataset: str, data_dir: Path, out: Path, **kw: object) -> TrainConfig:
    return TrainConfig(**{**_SETTINGS, "dataset": dataset, "data_dir": str(data_dir),
                           # type: ignore[arg-type]
                          "out": str(out), **kw})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rank_main(rank: int, world: int, port: int, data_dir: str, sums: dict[str, str],
               out: str) -> None:
    """One torchrun-style rank: the environment torchrun sets, then the ordinary fit()."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from vaelab.data.datasets import DatasetSpec, dataset_registry

    dataset_registry._entries["tiny"] = DatasetSpec(name="tiny", description="test", sha256=sums)
    from vaelab.training import sharded as distributed

    steps: list[int] = []
    sharded_step = distributed.ShardedStep.__call__

    def counted(self: distributed.ShardedStep, *args: Any) -> torch.Tensor:
        steps.append(self.shard.world_size)
        return sharded_step(self, *args)

    distributed.ShardedStep.__call__ = counted  # type: ignore[method-assign]
    fit(_config("tiny", Path(data_dir), Path(out)), RunOptions(pictures=False))
    (Path(out).parent / f"rank{rank}.json").write_text(json.dumps(steps))


@pytest.mark.slow  # two processes start torch and train
def test_two_gloo_ranks_match_one_process(tiny_dataset: str, tiny_dataset_dir: Path,
                                          tmp_path: Path) -> None:
    from vaelab.data.datasets import dataset_registry

    sums = dataset_registry.get(tiny_dataset).sha256
    ddp_dir = tmp_path / "ddp"
    mp.start_processes(_rank_main, args=(2, _free_port(), str(tiny_dataset_dir), sums,
                                         str(ddp_dir)), nprocs=2, start_method="spawn")
    single = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "one"),
                 RunOptions(pictures=False))
    ddp = [json.loads(line) for line in (ddp_dir / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(ddp, single.history, strict=True):
        for key in ("train_loss", "train_kl", "val_loss", "val_recon"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), key
    assert [r["lr"] for r in ddp] == [r["lr"] for r in single.history] == [1e-3, 5e-4]
    for rank in (0, 1):  # both ranks really took sharded steps: 9 per epoch, world size 2
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == [2] * 18
    # Only rank 0 wrote, and its checkpoint continues as a single-process run would.
    written = {p.name for p in ddp_dir.iterdir()} - {"train.lock"}
    assert written == {"best.safetensors", "config.json", "last.safetensors", "metrics.jsonl",
                       "provenance.json"}
    resumed = fit(_config(tiny_dataset, tiny_dataset_dir, ddp_dir, epochs=3),
                  RunOptions(resume=True, pictures=False))
    longer = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "one3", epochs=3),
                 RunOptions(pictures=False))
    for pa, pb in zip(resumed.model.parameters(), longer.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-4)
    assert resumed.history[-1]["val_loss"] == pytest.approx(longer.history[-1]["val_loss"],
                                                            rel=1e-4)


def test_shard_bounds_cover_the_batch_like_tensor_split() -> None:
    for n in (1, 2, 36, 63, 64):
        for world in (1, 2, 3, 4):
            parts = torch.arange(n).tensor_split(world)
            for rank in range(world):
                lo, hi = shard_bounds(n, rank, world)
                assert torch.equal(torch.arange(lo, hi), parts[rank])


def test_sharded_noise_equals_the_rows_of_a_global_draw() -> None:
    mu = torch.zeros(10, 3)
    torch.manual_seed(5)
    whole = torch.randn_like(mu)
    stacked = torch.randn((4, 10, 3))  # IWAE draws (k, B, z)
    for lo, hi in ((0, 5), (5, 10), (3, 4)):
        torch.manual_seed(5)
        with ShardedNoise(lo, hi, 10):
            part = torch.randn_like(mu[lo:hi])
            part_stacked = torch.randn((4, hi - lo, 3))
        assert torch.equal(part, whole[lo:hi])
        assert torch.equal(part_stacked, stacked[:, lo:hi])


def test_single_process_is_not_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert launched()
