"""The model contract (vaelab.models.contract): every violation is one line, before training.

Each case is a plugin file that breaks the contract one way; `vaelab train --plugin` must exit
2 with one line naming what is wrong and what was expected, and write nothing. The light ways
in (a VAE subclass with encode(x)/decode(z), two plain modules) pass the same checks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import write_plugin
from vaelab.cli.main import main
from vaelab.errors import VaelabError
from vaelab.models import VAE, ModelConfig, create_model, from_modules
from vaelab.models.contract import check_behaviour

pytestmark = pytest.mark.usefixtures("plugin_registry")

# A correct model; each case below changes one thing about it.
BASE = """
import torch
from torch import nn
from vaelab.models import VAE, ModelConfig, register_model


class Base(VAE):
    def __init__(self, config):
        super().__init__(config)
        self.enc = nn.Linear(784, 2 * config.z_dim)
        self.dec = nn.Linear(config.z_dim, 784)

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z):
        return self.dec(z).view(-1, 1, 28, 28)
"""

# name -> (what the plugin adds to BASE, what the one-line error must say); "{text}" stands for
# the number of the plugin's first line holding that text.
VIOLATIONS = {
    "decode-shape": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return self.dec(z)
        """, ["Bad.decode returned (32, 784); expected (32, 1, 28, 28) Bernoulli logits"]),
    "mu-shape": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def encode(self, x):
                mu, logvar = super().encode(x)
                return mu[:, :1], logvar
        """, ["Bad.encode returned (32, 1); expected (32, 4) mu"]),
    "one-tensor": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def encode(self, x):
                return self.enc(x.flatten(1))
        """, ["Bad.encode returned one tensor (32, 8)", "expected a pair (mu, logvar)"]),
    "dtype": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return super().decode(z).double()
        """, ["Bad.decode", "dtype torch.float64", "expected torch.float32"]),
    "device": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return torch.zeros(len(z), 1, 28, 28, device="meta")
        """, ["Bad.decode", "on meta", "expected them on cpu"]),
    "not-finite": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return super().decode(z) * float("nan")
        """, ["Bad.decode", "NaN or infinite", "expected finite numbers"]),
    "raises": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return self.dec(z.t())  # a student's transposition
        """, ["Bad.decode raised RuntimeError", "mat1 and mat2", "bad.py:{z.t()})"]),
    "no-parameters": ("""
        @register_model("bad", "x")
        class Bad(VAE):
            def encode(self, x):
                return x.new_zeros(len(x), 4), x.new_zeros(len(x), 4)

            def decode(self, z):
                return z.new_zeros(len(z), 1, 28, 28)
        """, ["Bad has no parameters", "expected layers"]),
    "not-a-vae": ("""
        @register_model("bad", "x")
        def bad(config):
            return nn.Linear(784, 4)
        """, ["bad.py:{@register} returned a Linear", "expected a vaelab.models.VAE"]),
    "config-ignored": ("""
        @register_model("bad", "x")
        def bad(config):
            return Base(ModelConfig(name="bad", z_dim=16))
        """, ["Base.config describes 'bad' with z_dim=16", "expected 'bad' with z_dim=4"]),
    "builder-raises": ("""
        @register_model("bad", "x")
        def bad(config):
            raise ValueError("no channels given")
        """, ["bad.py:{@register} raised ValueError: no channels given (",
                            "bad.py:{raise ValueError})"]),
    "no-gradient": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def decode(self, z):
                return super().decode(z).detach()

            def encode(self, x):
                mu, logvar = super().encode(x)
                return mu.detach(), logvar.detach()
        """, ["the loss of Bad has no gradient with respect to its parameters"]),
    "forward": ("""
        @register_model("bad", "x")
        class Bad(Base):
            def forward(self, x, y=None, beta=1.0):
                return {"loss": super().forward(x).loss}
        """, ["Bad.forward returned a dict", "expected a vaelab.models.VAEOutput"]),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_broken_model_is_one_line_before_training(
    case: str, train_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import textwrap

    addition, expected = VIOLATIONS[case]
    plugin = write_plugin(tmp_path, "bad.py", BASE + textwrap.dedent(addition))
    lines = plugin.read_text().splitlines()

    def line_of(match: re.Match[str]) -> str:
        return str(next(i for i, line in enumerate(lines, 1) if match.group(1) in line))

    code = main(["train", "--plugin", str(plugin), "--model", "bad", *train_args])
    err = capsys.readouterr().err
    expected = [re.sub(r"\{([^}]+)\}", line_of, part) for part in expected]
    assert code == 2, err
    assert err.startswith("vaelab: error: ") and err.count("\n") == 1, err
    for part in expected:
        assert part in err, (part, err)
    assert not (tmp_path / "run").exists()  # nothing written, not even the folder


def _linear_base() -> type[VAE]:
    class Linear(VAE):  # encode(x) and decode(z): no label argument
        def __init__(self, config: ModelConfig) -> None:
            super().__init__(config)
            self.enc = nn.Linear(784, 2 * config.z_dim)
            self.dec = nn.Linear(config.z_dim, 784)

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
            return mu, logvar

        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return self.dec(z).view(-1, 1, 28, 28)

    return Linear


def test_encode_and_decode_without_the_label_are_called_with_it() -> None:
    model = _linear_base()(ModelConfig(name="linear", z_dim=3))
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    torch.manual_seed(0)
    with_label = model(x, y)
    torch.manual_seed(0)
    without = model(x)
    assert torch.equal(with_label.loss, without.loss)  # the label is ignored, not an error
    assert model.encode(x, y)[0].shape == (5, 3)
    assert model.decode_probs(torch.zeros(2, 3)).max() <= 1
    check_behaviour(model, x, y)


class _Encoder(nn.Module):
    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


def test_two_plain_modules_make_a_vae() -> None:
    config = ModelConfig(name="modules", z_dim=4)
    decoder = nn.Sequential(nn.Linear(4, 784), nn.Unflatten(1, (1, 28, 28)))
    model = from_modules(_Encoder(4), decoder, config)
    x = torch.rand(6, 1, 28, 28)
    check_behaviour(model, x, torch.zeros(6, dtype=torch.long))
    out = model(x)
    assert out.logits.shape == (6, 1, 28, 28) and out.kl.shape == (6,)
    # The likelihood estimator's weights, as for any VAE.
    assert model.importance_log_weights(x, 3).shape == (3, 6)


def test_two_plain_modules_that_break_the_contract_are_named() -> None:
    config = ModelConfig(name="modules", z_dim=4)
    flat = nn.Linear(4, 784)  # logits (B, 784), not images
    with pytest.raises(VaelabError, match=r"^Linear \(the decoder\) returned \(6, 784\); "
                       r"expected \(6, 1, 28, 28\) Bernoulli logits$"):
        check_behaviour(from_modules(_Encoder(4), flat, config), torch.rand(6, 1, 28, 28))
    single = nn.Sequential(nn.Flatten(), nn.Linear(784, 8))  # one tensor, not (mu, logvar)
    with pytest.raises(VaelabError, match=r"Sequential \(the encoder\) returned a tensor of "
                       r"shape \(6, 8\); expected a pair \(mu, logvar\)"):
        check_behaviour(from_modules(single, flat, config), torch.rand(6, 1, 28, 28))
    with pytest.raises(VaelabError,
                       match=r"the encoder is a function; expected a torch\.nn\.Module"):
        from_modules(lambda x: x, flat, config)  # type: ignore[arg-type]


def test_the_check_leaves_no_trace() -> None:
    """Random state, batch-norm statistics and gradients are as they were."""
    class Normed(VAE):
        def __init__(self, config: ModelConfig) -> None:
            super().__init__(config)
            self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.BatchNorm1d(16),
                                     nn.Linear(16, 2 * config.z_dim))
            self.dec = nn.Linear(config.z_dim, 784)

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu, logvar = self.enc(x).chunk(2, dim=1)
            return mu, logvar

        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return self.dec(z).view(-1, 1, 28, 28)

    model = Normed(ModelConfig(name="normed", z_dim=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(8, 1, 28, 28)
    rng = torch.get_rng_state()
    check_behaviour(model, x)
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_every_built_in_model_keeps_the_contract() -> None:
    from vaelab.models import model_registry

    for name in model_registry.names():
        torch.manual_seed(0)
        model = create_model(name=name, z_dim=3)
        check_behaviour(model, torch.rand(4, 1, 28, 28), torch.arange(4))
