"""The model zoo: vae (Burda), iwae, cvae, vamp and hvae, each through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.distributions import (
    Bernoulli,
    Categorical,
    Independent,
    MixtureSameFamily,
    Normal,
    kl_divergence,
)

from vaelab.cli.main import main
from vaelab.config import TrainConfig
from vaelab.losses import log_normal
from vaelab.models import create_model
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, fit

ZOO = ["vae", "iwae", "cvae", "vamp", "hvae"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 28, 28, generator=generator) > 0.7).float()
    return x, torch.arange(n) % 10


def _model(name: str, **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name=name, z_dim=6, n_pseudo_inputs=30, **kw)


@pytest.mark.parametrize("name", ZOO)
def test_one_step_lowers_the_loss(name: str) -> None:
    model = _model(name, iw_samples=5 if name in ("iwae", "hvae") else None)
    x, y = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same noise before and after the step
        return model(x, y).loss

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert torch.isfinite(before)
    assert loss().item() < before.item()


@pytest.mark.parametrize("name", ["vae", "cvae", "vamp", "hvae"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
def test_beta_weights_the_kl(name: str, beta: float) -> None:
    model = _model(name)
    x, y = _batch()
    torch.manual_seed(2)
    out = model(x, y, beta=beta)
    expected = (out.recon_nll + beta * out.kl).mean()
    assert torch.allclose(out.loss, expected, rtol=1e-5, atol=1e-4)


def _normal(mu: torch.Tensor, logvar: torch.Tensor) -> Independent:
    return Independent(Normal(mu.double(), (0.5 * logvar.double()).exp()), 1)


@pytest.mark.parametrize("name", ZOO)
def test_kl_of_each_model_against_torch_distributions(name: str) -> None:
    """Each model's reported KL and reconstruction terms, recomputed in float64 with
    torch.distributions from the posterior the model returned (and, for the models whose KL is a
    one-sample estimate or conditional on a draw, the draw it decoded)."""
    model = _model(name)
    x, y = _batch()
    torch.manual_seed(2)
    out = model(x, y, beta=1.0)
    q = _normal(out.mu, out.logvar)
    standard = Independent(Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean)), 1)
    if name == "vamp":  # one-sample estimate log q(z|x) - log p(z) at the decoded z
        mu_k, logvar_k = model.prior_components()
        prior = MixtureSameFamily(Categorical(logits=torch.zeros(len(mu_k), dtype=torch.float64)),
                                  _normal(mu_k, logvar_k))
        z = out.z.double()
        expected = q.log_prob(z) - prior.log_prob(z)
    elif name == "hvae":  # KL of z2, plus that of z1 given the z2 drawn, both closed forms
        mu_d, logvar_d, _, _ = model._bottom_up(x)
        mu_p, logvar_p = model.prior_z1(out.z)
        # q(z1 | x, z2) ∝ N(mu_d, var_d) N(mu_p, var_p): precisions add, means precision-weighted.
        var_d, var_p = logvar_d.double().exp(), logvar_p.double().exp()
        var_1 = 1 / (1 / var_d + 1 / var_p)
        mu_1 = var_1 * (mu_d.double() / var_d + mu_p.double() / var_p)
        z1_q = Independent(Normal(mu_1, var_1.sqrt()), 1)
        expected = kl_divergence(q, standard) + kl_divergence(z1_q, _normal(mu_p, logvar_p))
    else:
        expected = kl_divergence(q, standard)
    assert out.kl.shape == (32,)
    assert torch.allclose(out.kl.double(), expected, rtol=1e-4, atol=1e-4), name
    if name in ("vae", "cvae", "vamp"):  # the image is decoded from out.z
        decoded = model.decode(out.z, y if model.conditional else None).double()
        recon = -Independent(Bernoulli(logits=decoded), 3).log_prob(x.double())
        assert torch.allclose(out.recon_nll.double(), recon, rtol=1e-5), name


@pytest.mark.parametrize("name", ["iwae", "hvae"])
def test_importance_weighted_objective(name: str) -> None:
    x, y = _batch(64)
    losses = {}
    for k in (1, 50):
        model = _model(name, iw_samples=k)
        torch.manual_seed(3)
        out = model(x, y)
        losses[k] = out.loss.item()
        if k == 50:  # recon_nll + kl is the ordinary negative ELBO; the K-sample bound is tighter
            assert out.loss.item() < (out.recon_nll + out.kl).mean().item() - 0.5
    assert losses[50] < losses[1] - 0.5
    # beta reaches the weights: beta = 0 leaves log p(x|z_k) alone in every weight, whose
    # log-mean-exp is at least its mean (Jensen), so the loss is at most recon_nll.
    model = _model(name, iw_samples=5)
    torch.manual_seed(4)
    weighted = model(x, y, beta=1.0).loss
    torch.manual_seed(4)
    unweighted = model(x, y, beta=0.0)
    assert unweighted.loss.item() <= unweighted.recon_nll.mean().item() + 1e-4
    assert unweighted.loss.item() != weighted.item()


@pytest.mark.parametrize("name", ZOO)
def test_save_load_same_outputs(name: str, tiny_dataset: str, tiny_dataset_dir: Path,
                                tmp_path: Path) -> None:
    config = TrainConfig(model=name, dataset=tiny_dataset, data_dir=str(tiny_dataset_dir),
                         epochs=1, batch_size=100, z_dim=3, device="cpu", out=str(tmp_path / "r"),
                         binarize="dynamic", iw_samples=3 if name in ("iwae", "hvae") else 1)
    result = fit(config, RunOptions(pictures=False))
    loaded = load_run(tmp_path / "r", which="last").model
    trained = result.model.eval()
    x, y = _batch(8)
    args = (y,) if trained.conditional else ()
    z = torch.randn(8, 3)
    assert torch.equal(trained.decode(z, *args), loaded.decode(z, *args))
    for a, b in zip(trained.encode(x, *args), loaded.encode(x, *args), strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(5)
    first = trained.importance_log_weights(x, 4, y)
    torch.manual_seed(5)
    assert torch.equal(first, loaded.importance_log_weights(x, 4, y))
    assert first.shape == (4, 8) and torch.isfinite(first).all()


def test_vae_is_burdas_network() -> None:
    model = create_model(name="vae", z_dim=50)
    sizes = [(m.in_features, m.out_features) for m in model.modules()
             if isinstance(m, torch.nn.Linear)]
    assert sizes == [(784, 200), (200, 200), (200, 100), (50, 200), (200, 200), (200, 784)]
    assert any(isinstance(m, torch.nn.Tanh) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_vamp_prior_is_the_mixture_of_pseudo_posteriors() -> None:
    model = _model("vamp")
    z = torch.randn(3, 7, 6)
    mu, logvar = model.prior_components()  # (30, 6)
    brute = torch.logsumexp(log_normal(z[..., None, :], mu, logvar), dim=-1) - torch.log(
        torch.tensor(30.0))
    assert torch.allclose(model.log_prior(z), brute, atol=1e-3)
    draws = model.sample_prior(5000, torch.Generator().manual_seed(0))
    again = model.sample_prior(5000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again) and draws.shape == (5000, 6)
    # Draws come from the mixture: with five components far apart (means 10 apart on the first
    # axis, widths 0.1 to 0.5), each draw shows which one it came from. Each must be picked
    # about a fifth of the time and then drawn with its own mean and width.
    means = torch.zeros(5, 6)
    means[:, 0] = 10.0 * torch.arange(5)
    widths = 0.1 * torch.arange(1, 6)
    logvars = (2 * widths.log())[:, None].expand(5, 6)
    model.prior_components = lambda: (means, logvars)  # type: ignore[method-assign]
    draws = model.sample_prior(5000, torch.Generator().manual_seed(1))
    component = (draws[:, :1] - means[:, 0]).abs().argmin(1)
    counts = torch.bincount(component, minlength=5)
    assert ((counts - 1000).abs() < 4 * (5000 * 0.2 * 0.8) ** 0.5).all(), counts  # 4 sigma
    for k in range(5):
        own = draws[component == k]
        assert torch.allclose(own.mean(0), means[k], atol=4 * float(widths[k]) / 30), k
        assert torch.allclose(own.std(0), widths[k].expand(6), rtol=0.12), k
    del model.prior_components
    x, y = _batch()
    model(x, y).loss.backward()
    assert model.pseudo_inputs.grad is not None and model.pseudo_inputs.grad.abs().sum() > 0


def test_hvae_kl_between_gaussians_and_interface() -> None:
    from vaelab.losses import gaussian_kl_between

    mu_q, mu_p = torch.randn(4, 5), torch.randn(4, 5)
    lv_q, lv_p = torch.randn(4, 5), torch.randn(4, 5)
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), expected, atol=1e-5)
    model = _model("hvae")
    x, _ = _batch(4)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 6)
    assert model.decode(mu).shape == (4, 1, 28, 28)
    assert model.prior_z1(mu)[0].shape == (4, 12)


def test_cvae_label_changes_the_digit_and_style_grid_holds_z() -> None:
    from vaelab.errors import VaelabError
    from vaelab.models.cvae import digit_style_grid

    model = _model("cvae").eval()
    z = torch.randn(2, 6)
    threes = model.decode_probs(z, torch.tensor([3, 3]))
    sevens = model.decode_probs(z, torch.tensor([7, 7]))
    assert not torch.allclose(threes, sevens)
    grid = digit_style_grid(model, styles=3, seed=9)
    assert grid.shape == (3, 10, 1, 28, 28)
    z_rows = model.sample_prior(3, torch.Generator().manual_seed(9))
    for digit in (0, 4, 9):
        assert torch.allclose(grid[:, digit], model.decode_probs(z_rows, torch.full((3,), digit)))
    with pytest.raises(VaelabError, match="label"):
        model.decode(z)


def test_sample_digit_cli(train_args: list[str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *train_args, "--model", "cvae", "--epochs", "1"]) == 0
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["sample", str(run), "--digit", "7", "--n", "16"]) == 0
    assert (run / "samples_digit7.png").is_file()
    assert main(["sample", str(run), "--styles", "4"]) == 0
    png = (run / "digits.png").read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (2 * (10 * 30 + 2), 2 * (4 * 30 + 2))  # 10 digits x 4 styles
    assert main(["evaluate", str(run), "--nll", "--samples", "5", "--json"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--digit", "12"]) == 2
    assert "--digit" in capsys.readouterr().err
    assert main(["train", *train_args, "--out", str(tmp_path / "plain"), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "plain"), "--digit", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "conditional" in err
