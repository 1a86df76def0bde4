"""Device and precision choice: bf16 only where it runs natively, a warning where it is emulated."""

from __future__ import annotations

import logging

import pytest
import torch

from vaelab.device import bf16_is_native, resolve_device, resolve_precision
from vaelab.errors import VaelabError

CPU = torch.device("cpu")


def _cpu_with(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(("avx512_bf16", "amx", "native"), [
    (False, False, False), (True, False, True), (False, True, True)])
def test_bf16_is_native_only_with_avx512_bf16_or_amx(monkeypatch: pytest.MonkeyPatch,
                                                     avx512_bf16: bool, amx: bool,
                                                     native: bool) -> None:
    _cpu_with(monkeypatch, avx512_bf16, amx)
    assert bf16_is_native(CPU) is native
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")


def test_explicit_bf16_on_an_emulating_cpu_warns_once(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    _cpu_with(monkeypatch, False, False)
    with caplog.at_level(logging.WARNING, logger="vaelab.device"):
        assert resolve_precision("bf16", CPU) == "bf16"  # kept: the user asked for it
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "no native bf16" in warnings[0] and "--precision fp32 or auto" in warnings[0]


def test_native_bf16_and_fp32_say_nothing(monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    _cpu_with(monkeypatch, True, False)
    with caplog.at_level(logging.WARNING, logger="vaelab.device"):
        assert resolve_precision("bf16", CPU) == "bf16"
        assert resolve_precision("fp32", CPU) == "fp32"
    assert not caplog.records


def test_the_training_step_resolves_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step takes its precision from resolve_precision: auto becomes fp32 here."""
    from vaelab.config import TrainConfig
    from vaelab.models import create_model
    from vaelab.training.step import TrainStep, make_optimizer

    _cpu_with(monkeypatch, False, False)
    config = TrainConfig(z_dim=2, precision="auto", device="cpu")
    model = create_model(config.model_config())
    images = torch.zeros(8, 28, 28, dtype=torch.uint8)
    step = TrainStep(model, make_optimizer(model, config, CPU), config, images,
                     torch.zeros(8, dtype=torch.long))
    assert step.precision == "fp32"


def test_unavailable_devices_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VaelabError, match="no CUDA GPU is visible; use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")
