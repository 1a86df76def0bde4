from __future__ import annotations

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.models import ModelConfig, create_model, model_registry


@pytest.mark.parametrize("name", model_registry.names())
@pytest.mark.parametrize("z_dim", [1, 2, 20])
def test_every_model_shapes_and_finite(name: str, z_dim: int) -> None:
    torch.manual_seed(0)
    model = create_model(name=name, z_dim=z_dim)
    x = torch.rand(5, 1, 28, 28)
    y = torch.arange(5) % 10
    out = model(x, y)
    assert out.logits.shape == (5, 1, 28, 28)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, z_dim)
    assert out.recon_nll.shape == out.kl.shape == (5,)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for p in model.parameters()
        if p.requires_grad
    )


def test_seed_network_is_the_studys() -> None:
    model = create_model(name="seed", z_dim=20)
    sizes = [
        (m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert sizes == [(784, 256), (256, 1024), (1024, 40), (20, 784), (784, 784)]


def test_mlp_network_is_pytorch_examples() -> None:
    model = create_model(name="mlp", z_dim=20)
    sizes = [
        (m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert sizes == [(784, 400), (400, 40), (20, 400), (400, 784)]


def test_reparameterize_is_mu_plus_sigma_eps() -> None:
    torch.manual_seed(0)
    mu = torch.full((200_000, 1), 3.0)
    logvar = torch.full((200_000, 1), 2 * torch.log(torch.tensor(0.5)).item())
    z = create_model(name="mlp", z_dim=1).reparameterize(mu, logvar)
    assert abs(z.mean().item() - 3.0) < 0.01
    assert abs(z.std().item() - 0.5) < 0.01


def test_one_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = create_model(name="mlp", z_dim=8)
    x = (torch.rand(64, 1, 28, 28) > 0.7).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> float:
        torch.manual_seed(1)  # the same noise before and after the step
        return model(x).loss.item()

    before = loss()
    torch.manual_seed(1)
    optimizer.zero_grad()
    model(x).loss.backward()
    optimizer.step()
    assert loss() < before


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_z_dim(bad: int) -> None:
    # The model layer names the setting, not a command-line flag.
    with pytest.raises(VaelabError, match=r"^z_dim must be a positive integer"):
        ModelConfig(z_dim=bad)


def test_unknown_model() -> None:
    with pytest.raises(VaelabError, match="unknown model 'resnet'"):
        create_model(name="resnet")
