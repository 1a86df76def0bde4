from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import vaelab
from conftest import assert_padding_has_zero_gradient
from vaelab.config import TrainConfig
from vaelab.data import load_splits
from vaelab.errors import VaelabError
from vaelab.losses import elbo_terms
from vaelab.models import create_model
from vaelab.runs.checkpoint import read_checkpoint
from vaelab.runs.rebuild import load_run
from vaelab.training import FitResult, RunOptions, TrainingInterrupted, fit, fit_many
from vaelab.training.schedule import epoch_permutation, steps_per_epoch
from vaelab.training.stacked import StackedMLP
from vaelab.training.stacked_step import StackedStep


def _config(dataset: str, data_dir: Path, out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(model="seed", dataset=dataset, data_dir=str(data_dir), epochs=2,
                                batch_size=64, device="cpu", seed=3, out=str(out))
    base.update(kw)
    return TrainConfig(**base)


def _sweep(dataset: str, data_dir: Path, root: Path, z_dims: tuple[int, ...],
           **kw: Any) -> list[TrainConfig]:
    return [_config(dataset, data_dir, root / f"z{z}", z_dim=z, **kw) for z in z_dims]


def _float64_alone(config: TrainConfig) -> tuple[list[torch.Tensor], torch.nn.Module]:
    """The run of ``config`` as a textbook loop in float64: the same initial weights, data order
    and reparameterisation noise as a run alone, every product and Adam in double precision.
    Returns the initial weights and the trained model."""
    torch.manual_seed(config.seed)
    model = create_model(config.model_config())
    noise = torch.Generator()
    noise.set_state(torch.get_rng_state())  # a run's noise continues the stream from here
    start = [p.detach().clone().double() for p in model.parameters()]
    model = model.double()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    images = torch.from_numpy(load_splits(config.dataset, config.data_dir).train_images)
    steps = steps_per_epoch(len(images), config.batch_size)
    for epoch in range(config.epochs):
        order = epoch_permutation(len(images), config.seed, epoch, torch.device("cpu"))
        for step in range(steps):
            x = images[order[step * config.batch_size:(step + 1) * config.batch_size]]
            x = x.unsqueeze(1).double() / 255.0
            eps = torch.randn(len(x), config.z_dim, generator=noise).double()
            mu, logvar = model.encode(x)
            logits = model.decode(mu + eps * torch.exp(0.5 * logvar))
            optimizer.zero_grad()
            elbo_terms(logits, x, mu, logvar, config.beta).loss.mean().backward()
            optimizer.step()
    return start, model


def _assert_same_training(alone: FitResult, stacked: FitResult) -> None:
    """Equal to float rounding: summation order differs between addmm and a batched bmm; and
    both within float32 rounding of the same run in float64."""
    for ra, rb in zip(alone.history, stacked.history, strict=True):
        assert set(ra) == set(rb)
        for key in ra:
            if key != "seconds":
                assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-4), key
    assert stacked.best_val == pytest.approx(alone.best_val, rel=1e-5)
    start, exact = _float64_alone(load_run(alone.run_dir, "last").config)
    for (name, reference), initial, pa, pb in zip(exact.named_parameters(), start,
                                                  alone.model.parameters(),
                                                  stacked.model.parameters(), strict=True):
        moved = float((reference.detach() - initial).norm())
        # Alone and stacked run the same float32 sums in another order. Measured on the tiny
        # data (seed and mlp, 9 and 18 steps): each tensor within 4.3e-6 of the distance
        # training moved it, no element apart by more than 5.6e-6.
        apart = (pa.detach() - pb.detach()).abs()
        assert float(apart.norm()) < 5e-5 * moved, name
        assert float(apart.max()) < 5e-5, name
        for trained in (pa, pb):
            error = (trained.detach().double() - reference.detach()).abs()
            # Float32 against float64 depends on the CPU's kernels, and Adam amplifies it where
            # a gradient is near zero: each tensor within 9e-6 of the distance moved on one
            # AVX-512 CPU, within 1.9e-4 (the z_dim 1 run) on an AMD EPYC with AVX-512, no
            # element off by more than 3e-4, a third of one Adam step (lr 1e-3). A learning
            # rate 1 % too large in the float64 run puts encoder.0.weight 15 % of it away.
            assert float(error.norm()) < 1e-3 * moved, name
            assert float(error.max()) < 1e-3, name


def test_batched_sweep_matches_separate_fits(tiny_dataset: str, tiny_dataset_dir: Path,
                                             tmp_path: Path) -> None:
    z_dims = (1, 2, 5)
    alone = [fit(c, RunOptions(pictures=False)) for c in _sweep(tiny_dataset, tiny_dataset_dir,
                                                    tmp_path / "alone", z_dims)]
    stacked = fit_many(_sweep(tiny_dataset, tiny_dataset_dir, tmp_path / "stacked", z_dims))
    assert [r.model.z_dim for r in stacked] == list(z_dims)
    for a, b in zip(alone, stacked, strict=True):
        _assert_same_training(a, b)
    for z, result in zip(z_dims, stacked, strict=True):
        run = tmp_path / "stacked" / f"z{z}"
        assert result.run_dir == run
        for name in ("config.json", "metrics.jsonl", "last.safetensors", "best.safetensors",
                     "loss_curves.png", "reconstructions.png", "samples.png"):
            assert (run / name).is_file(), name
        assert json.loads((run / "config.json").read_text())["z_dim"] == z
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert lines == result.history and [r["epoch"] for r in lines] == [1, 2]
        loaded = vaelab.load(str(run))
        assert loaded.model.z_dim == z
        for pa, pb in zip(loaded.model.parameters(), load_run(run, "last").model.parameters(),
                          strict=True):
            assert pa.shape == pb.shape
        ckpt = read_checkpoint(run / "last.safetensors")
        assert ckpt.state is not None and ckpt.state.epoch == 2 and ckpt.state.global_step == 18
        assert ckpt.optimizer_state is not None and "cpu" in ckpt.rng


def test_seeds_stack_together_and_each_sees_its_own_data_order(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Models of different seeds share one step, each reading its own seed's batches."""
    grid = [(z, seed) for z in (2, 5) for seed in (3, 4)]
    kw: dict[str, Any] = dict(model="mlp", epochs=1)

    def configs(root: Path) -> list[TrainConfig]:
        return [_config(tiny_dataset, tiny_dataset_dir, root / f"z{z}-s{seed}", z_dim=z,
                        seed=seed, **kw) for z, seed in grid]

    alone = [fit(c, RunOptions(pictures=False)) for c in configs(tmp_path / "alone")]
    with caplog.at_level(logging.INFO, logger="vaelab.training.fit"):
        together = fit_many(configs(tmp_path / "stacked"), RunOptions(pictures=False))
    assert "training 4 models stacked" in caplog.text  # one step for all four
    for a, b in zip(alone, together, strict=True):
        _assert_same_training(a, b)
    # Different seeds really trained differently (other initialisation and data order).
    assert alone[0].history[0]["train_loss"] != alone[1].history[0]["train_loss"]


def test_interrupted_batch_resumes_stacked_or_alone(tiny_dataset: str, tiny_dataset_dir: Path,
                                                    tmp_path: Path) -> None:
    z_dims = (2, 5)
    kw: dict[str, Any] = dict(model="mlp", epochs=1)
    full = fit_many(_sweep(tiny_dataset, tiny_dataset_dir, tmp_path / "full", z_dims, **kw),
                    RunOptions(pictures=False))
    cut = _sweep(tiny_dataset, tiny_dataset_dir, tmp_path / "cut", z_dims, **kw)
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] == 5  # of the 9 steps of the epoch

    with pytest.raises(TrainingInterrupted, match="resume"):
        fit_many(cut, RunOptions(stop_requested=stop_after_5, pictures=False))
    for config in cut:
        state = read_checkpoint(Path(config.out) / "last.safetensors").state
        assert state is not None and (state.epoch, state.step, state.global_step) == (0, 5, 5)
    # One run continued alone by fit, as `vaelab train --resume` does.
    shutil.copytree(cut[1].out, tmp_path / "alone")
    alone = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "alone", z_dim=5, **kw),
                RunOptions(resume=True, pictures=False))
    resumed = fit_many(cut, RunOptions(resume=True, pictures=False))
    for a, b in zip(full, resumed, strict=True):
        for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(pa, pb)
        assert [{**r, "seconds": 0} for r in a.history] == [{**r, "seconds": 0} for r in b.history]
    _assert_same_training(alone, resumed[1])


class _Recorder:
    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.starts.append(epoch)

    def step(self, loss: float | None) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.ends.append(record["epoch"])


def test_finished_runs_are_skipped_and_unfinished_extended(tiny_dataset: str,
                                                           tiny_dataset_dir: Path,
                                                           tmp_path: Path) -> None:
    configs = _sweep(tiny_dataset, tiny_dataset_dir, tmp_path, (2, 3), model="mlp", epochs=1)
    first = fit_many(configs, RunOptions(pictures=False))
    last = Path(configs[0].out) / "last.safetensors"
    stamp = last.stat().st_mtime_ns
    progress = _Recorder()
    again = fit_many(configs, RunOptions(resume=True, progress=progress, pictures=False))
    assert progress.starts == [] and last.stat().st_mtime_ns == stamp
    for a, b in zip(first, again, strict=True):
        assert a.history == b.history
        for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(pa, pb)
    # One run extended to 2 epochs while the other stays finished.
    longer = [configs[0], _config(tiny_dataset, tiny_dataset_dir, tmp_path / "z3", z_dim=3,
                                  model="mlp", epochs=2)]
    progress = _Recorder()
    extended = fit_many(longer, RunOptions(resume=True, progress=progress, pictures=False))
    assert progress.starts == [1] and progress.ends == [2]
    assert [len(r.history) for r in extended] == [1, 2]


def test_refuses_before_writing(tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> None:
    fit_many(_sweep(tiny_dataset, tiny_dataset_dir, tmp_path, (2,), model="mlp", epochs=1),
             RunOptions(pictures=False))
    configs = _sweep(tiny_dataset, tiny_dataset_dir, tmp_path, (1, 2), model="mlp", epochs=1)
    with pytest.raises(VaelabError, match="already holds a run"):
        fit_many(configs)
    assert not (tmp_path / "z1").exists()
    with pytest.raises(VaelabError, match="is missing"):
        fit_many(configs, RunOptions(resume=True))
    twice = [configs[0], configs[0]]
    with pytest.raises(VaelabError, match="own --out"):
        fit_many(twice)


def test_unstackable_config_is_trained_by_fit(tiny_dataset: str, tiny_dataset_dir: Path,
                                              tmp_path: Path) -> None:
    # Dynamic binarisation draws each model's own binary batch, so it is not stacked.
    kw = dict(model="mlp", z_dim=2, epochs=1, binarize="dynamic")
    mixed = fit_many([_config(tiny_dataset, tiny_dataset_dir, tmp_path / "dynamic", **kw),
                      _config(tiny_dataset, tiny_dataset_dir, tmp_path / "mlp", model="mlp",
                              epochs=1)], RunOptions(pictures=False))
    alone = fit(_config(tiny_dataset, tiny_dataset_dir, tmp_path / "alone", **kw),
                RunOptions(pictures=False))
    for pa, pb in zip(alone.model.parameters(), mixed[0].model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert mixed[1].model.z_dim == 20


def _models(z_dims: tuple[int, ...], name: str = "mlp") -> list[Any]:
    torch.manual_seed(0)
    return [create_model(name=name, z_dim=z) for z in z_dims]


def test_stacked_terms_match_each_model_and_padding_gets_no_gradient() -> None:
    z_dims = (1, 3, 4)
    models = _models(z_dims)
    stacked = StackedMLP(models, torch.device("cpu"))
    x = torch.rand(6, 1, 28, 28)
    noise = [torch.randn(6, z) for z in z_dims]
    eps = torch.stack([torch.nn.functional.pad(n, (0, 4 - n.shape[1])) for n in noise])
    betas = torch.tensor([1.0, 0.5, 2.0])
    terms = stacked.terms(x, eps, betas)
    terms.total.backward()
    for k, (model, n) in enumerate(zip(models, noise, strict=True)):
        mu, logvar = model.encode(x)
        logits = model.decode(mu + n * torch.exp(0.5 * logvar))
        alone = model.loss_terms(x, logits, mu, logvar, mu, float(betas[k]))
        expected = torch.stack([alone.loss.mean() * 6, alone.recon_nll.sum(), alone.kl.sum()])
        torch.testing.assert_close(terms.sums[k], expected, rtol=1e-5, atol=1e-4)
        copy = create_model(name="mlp", z_dim=model.z_dim)
        stacked.copy_to(k, copy)
        for pa, pb in zip(model.parameters(), copy.parameters(), strict=True):
            assert torch.equal(pa, pb)
    assert_padding_has_zero_gradient(stacked, z_dims)


def _step_runs(use_graph: bool, device: torch.device, steps: int = 4) -> list[torch.Tensor]:
    models = [m.to(device) for m in _models((2, 5))]
    configs = [TrainConfig(model="mlp", z_dim=m.z_dim, batch_size=8) for m in models]
    rngs = [{"cpu": torch.Generator().manual_seed(s).get_state()} for s in (1, 2)]
    images = (torch.rand(40, 28, 28) * 255).to(torch.uint8).to(device)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1)).to(device)
    step = StackedStep(models, configs, images, rngs, [None, None], use_graph=use_graph)
    sums = [step(order[8 * i:8 * (i + 1)].unsqueeze(0), [1.0, 0.5]).clone()
            for i in range(steps)]
    return [*sums, *[p.detach().clone() for p in step.stacked.parameters()]]


def test_graph_step_runs_eagerly_off_cuda() -> None:
    eager = _step_runs(False, torch.device("cpu"))
    graph_requested = _step_runs(True, torch.device("cpu"))
    for a, b in zip(eager, graph_requested, strict=True):
        assert torch.equal(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_matches_eager_step() -> None:
    device = torch.device("cuda")
    eager = _step_runs(False, device, steps=6)
    graph = _step_runs(True, device, steps=6)
    for a, b in zip(eager, graph, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_stacked_training_equals_alone_in_float64() -> None:
    """In float64 rounding is negligible, so the stacked path must equal fit's math exactly."""
    z_dims, batch, steps = (2, 5), 16, 25
    images = torch.rand(batch * steps, 1, 28, 28, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.set_default_dtype(torch.float64)
        try:
            built = []
            for z in z_dims:
                torch.manual_seed(7)
                built.append((create_model(name="mlp", z_dim=z), torch.get_rng_state()))
            alone = []
            for model, rng in built:
                torch.set_rng_state(rng)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
                for s in range(steps):
                    out = model(images[s * batch:(s + 1) * batch])
                    optimizer.zero_grad(set_to_none=True)
                    out.loss.backward()
                    optimizer.step()
                alone.append([p.detach().clone() for p in model.parameters()])
            built = []
            for z in z_dims:
                torch.manual_seed(7)
                built.append((create_model(name="mlp", z_dim=z), torch.get_rng_state()))
            stacked = StackedMLP([m for m, _ in built], torch.device("cpu"))
            optimizer = torch.optim.Adam(stacked.parameters(), lr=1e-3, foreach=False)
            stacked.load_optimizer_states(optimizer, [None, None])
            generators = [torch.Generator() for _ in built]
            for generator, (_, rng) in zip(generators, built, strict=True):
                generator.set_state(rng)
            for s in range(steps):
                eps = torch.zeros(len(z_dims), batch, max(z_dims))
                for k, (generator, z) in enumerate(zip(generators, z_dims, strict=True)):
                    eps[k, :, :z] = torch.randn((batch, z), generator=generator)
                terms = stacked.terms(images[s * batch:(s + 1) * batch], eps, torch.ones(2))
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()
            for k, (model, _) in enumerate(built):
                stacked.copy_to(k, model)
                for pa, pb in zip(alone[k], model.parameters(), strict=True):
                    torch.testing.assert_close(pb.detach(), pa, rtol=1e-10, atol=1e-12)
        finally:
            torch.set_default_dtype(torch.float32)
