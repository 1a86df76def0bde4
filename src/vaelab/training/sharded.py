"""Data-parallel training under ``torchrun``: one process per device, one global batch.

``torchrun --nproc-per-node N -m vaelab train ...`` starts N copies of ``vaelab train``
with RANK, WORLD_SIZE and LOCAL_RANK set; ``fit`` notices them and trains with
DistributedDataParallel (NCCL on CUDA, Gloo on CPU). The run is the single-process run with
the same ``--batch-size``, split across the ranks:

* every rank draws the same epoch permutation and takes its contiguous rows of each global
  batch (``torch.tensor_split``), so the global batch is ``--batch-size``;
* each rank's loss is weighted by its share of the batch, so DDP's gradient average is the
  gradient of the global batch mean — the single-process update, up to float rounding;
* random draws inside the forward pass (``torch.randn_like`` / ``torch.randn``, as in
  ``reparameterize``) are made for the whole global batch on every rank and the rank keeps
  its rows, and dynamic binarisation is applied to the whole batch before it is split, so
  every sample gets the noise it would get in one process and the RNG streams of all ranks
  stay in step with a single-process run;
* the loss sums are all-reduced every step, so every rank sees the same metrics, takes the
  same NaN and early-stop decisions, and rank 0's checkpoint (model, Adam state, RNG) is
  the same file a single process writes: runs resume either way.

Only rank 0 writes the run directory (and holds its lock). The other ranks run the same
loop against a private scratch folder that is deleted when they finish.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from vaelab.config import TrainConfig
from vaelab.data.tensors import DeviceSplits
from vaelab.errors import VaelabError
from vaelab.models import VAE
from vaelab.runs.layout import RunDir
from vaelab.training.lifecycle import FitResult, Member, train_runs
from vaelab.training.options import RunOptions
from vaelab.training.step import TrainStep

__all__ = ["Shard", "ShardedNoise", "ShardedStep", "fit_sharded", "launched", "shard_bounds"]

log = logging.getLogger(__name__)


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) with several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows [lo, hi) of a global batch of ``n`` owned by ``rank`` (as torch.tensor_split)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class ShardedNoise(TorchFunctionMode):
    """Within a rank's forward pass, draw noise for the global batch and keep this rank's rows.

    A draw shaped like the local batch (the first dimension of size ``local_n``) is made at
    the global batch size along that dimension and sliced, so the values equal a one-process
    run's and every rank consumes the RNG identically.
    """

    def __init__(self, lo: int, hi: int, global_n: int) -> None:
        super().__init__()
        self.lo, self.hi, self.global_n = lo, hi, global_n

    def _global(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int] | None:
        local_n = self.hi - self.lo
        if local_n == self.global_n or local_n not in shape:
            return None
        dim = shape.index(local_n)
        return (*shape[:dim], self.global_n, *shape[dim + 1:]), dim

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.randn_like and "generator" not in kwargs:
            like = args[0]
            found = self._global(tuple(like.shape))
            if found is not None:
                full = torch.randn(found[0], dtype=kwargs.get("dtype") or like.dtype,
                                   device=kwargs.get("device") or like.device)
                return full.narrow(found[1], self.lo, self.hi - self.lo)
        elif func is torch.randn and "generator" not in kwargs and "out" not in kwargs:
            shape = tuple(args[0]) if len(args) == 1 and not isinstance(args[0], int) else args
            found = self._global(tuple(int(s) for s in shape))
            if found is not None:
                full = torch.randn(found[0], **kwargs)
                return full.narrow(found[1], self.lo, self.hi - self.lo)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class Shard:
    """This process's place in the process group."""

    rank: int
    world_size: int

    def agree(self, flag: bool) -> bool:
        """True on every rank when any rank says True (an early stop must be collective)."""
        value = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


class ShardedStep(TrainStep):
    """The training step of one rank: this rank's rows of each global batch, under DDP."""

    def __init__(self, shard: Shard, model: VAE, optimizer: torch.optim.Optimizer,
                 config: TrainConfig, images: torch.Tensor,
                 labels: torch.Tensor | None) -> None:
        super().__init__(model, optimizer, config, images, labels, graphs=False)
        from torch.nn.parallel import DistributedDataParallel

        self.shard = shard
        device = model_device(model)
        self.train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    def __call__(self, index: torch.Tensor, kl_weights: Sequence[float]) -> torch.Tensor:
        """One update on this rank's rows of ``images[index]``; the global batch sums, (1, 3)."""
        rows = index[0] if index.dim() == 2 else index
        n = len(rows)
        x, y = self.gather(self.buffers_for(n), rows)  # binarised as one batch
        lo, hi = shard_bounds(n, self.shard.rank, self.shard.world_size)
        # A rank with no rows (a last batch smaller than the world) still joins the gradient
        # all-reduce, with one row weighted zero.
        weight = (hi - lo) * self.shard.world_size / n
        mine = slice(lo, hi) if hi > lo else slice(0, 1)
        with ShardedNoise(mine.start, mine.stop, n):
            sums = self.update(x[mine], None if y is None else y[mine], kl_weights[0],
                               scale=weight)
        if hi == lo:
            sums = sums * 0
        dist.all_reduce(sums)
        return sums.unsqueeze(0)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current_shard() -> Shard | None:
    """The Shard of this process when a process group of more than one rank is running."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Shard(dist.get_rank(), dist.get_world_size())


@contextlib.contextmanager
def process_group(config: TrainConfig) -> Iterator[Shard]:
    """Join the torchrun process group for the length of a run: NCCL on CUDA, Gloo on CPU."""
    from vaelab.device import resolve_device

    device = resolve_device(config.device)
    if device.type == "mps":
        raise VaelabError("multi-process training runs on CUDA or CPU; use --device cuda or cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise VaelabError(f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} "
                              "visible); start at most one process per GPU")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    try:
        shard = current_shard()
        assert shard is not None
        if config.batch_size < shard.world_size:
            raise VaelabError(f"--batch-size {config.batch_size} is smaller than the "
                              f"{shard.world_size} processes; each needs at least one image")
        yield shard
    finally:
        dist.destroy_process_group()


def fit_sharded(config: TrainConfig, options: RunOptions) -> FitResult:
    """One rank of a torchrun run: the ordinary lifecycle with a ``ShardedStep``.

    Rank 0 writes ``config.out`` (and shows progress); the other ranks run the same loop
    against a private scratch folder that is deleted when they finish.
    """
    with process_group(config) as shard:
        stop = options.stop_requested
        agreed = RunOptions(resume=options.resume, progress=options.progress,
                            stop_requested=None if stop is None
                            else (lambda: shard.agree(stop())),
                            pictures=options.pictures, tracker_study=options.tracker_study)

        def make_step(members: list[Member], data: DeviceSplits) -> ShardedStep:
            member = members[0]
            optimizer = member.restore_optimizer()
            member.restore_global_rng()
            return ShardedStep(shard, member.model, optimizer, member.config,
                               data.train_images, data.train_labels)

        if shard.rank == 0:
            return train_runs([config], agreed, make_step)[0]
        scratch = Path(tempfile.mkdtemp(prefix=f"vaelab-rank{shard.rank}-"))
        try:
            if agreed.resumes(1)[0]:
                # Every rank starts from rank 0's checkpoint (the run directory must be
                # readable by all ranks, e.g. a shared file system across nodes).
                for path in RunDir(config.out).files_to_share():
                    shutil.copy2(path, scratch / path.name)
            quiet = RunOptions(resume=agreed.resume, stop_requested=agreed.stop_requested,
                               pictures=False)
            result = train_runs([replace(config, out=str(scratch), trackers=())], quiet,
                                make_step)[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return replace(result, run_dir=Path(config.out))
