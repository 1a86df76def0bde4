from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.errors import VaelabError
from vaelab.models import create_model
from vaelab.runs.checkpoint import read_checkpoint, save_checkpoint


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path: Path) -> None:
    """The first byte of a safetensors file is the header length's low byte; 0x80 is valid."""
    model = create_model(name="mlp", z_dim=2)
    path = tmp_path / "best.safetensors"
    for pad in range(300):
        config = TrainConfig(model="mlp", z_dim=2, out="r" * (pad + 1))  # header grows by 1 byte
        save_checkpoint(path, model, config)
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no header length with low byte 0x80 was produced")
    loaded = read_checkpoint(path)
    assert torch.equal(
        loaded.model_state["to_logits.weight"], model.state_dict()["to_logits.weight"]
    )


def test_a_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.safetensors"
    torch.save({"a": 1}, path)
    with pytest.raises(VaelabError, match="never unpickles"):
        read_checkpoint(path)
