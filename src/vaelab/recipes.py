"""Recipes: published training protocols by name, each in one place with its source and figure.

A recipe holds every setting a paper's run needs (model, z_dim, K, batch, optimiser and schedule,
binarisation, data, epochs), the evaluation protocol its number was measured with (K = 5000
importance samples on all 10,000 test images, and which checkpoint), the paper's figure, and
notes wherever vaelab's run is not exactly the paper's. ``vaelab train --recipe NAME`` starts
from its settings (defaults < recipe < TOML < flags), so any of them can be overridden flag by
flag; ``TrainConfig.recipe`` records the name.

A run shorter than the recipe (``--budget-epochs N``) is *compressed*: the schedule is laid out
over N epochs (``vaelab.lr_schedules``) and the settings counted in epochs (``EPOCH_COUNTED``)
are scaled by N / the recipe's epochs. ``recipe_run`` tells, from a run's config alone, which
recipe it follows and how: the full protocol, compressed, or modified (with every setting that
differs); every place that shows a recipe run's number words it with ``RecipeRun.label``.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from vaelab.errors import VaelabError
from vaelab.registry import Registry

if TYPE_CHECKING:
    from vaelab.config import TrainConfig

__all__ = ["EPOCH_COUNTED", "NOT_PROTOCOL", "RECIPES", "Recipe", "RecipeRun", "recipe_run",
           "recipe_settings"]

# Settings counted in epochs of the run, scaled with it when a recipe is compressed.
EPOCH_COUNTED = ("kl_warmup", "lr_warmup", "lr_step_every")
# Settings that say where and how a run is done, not what is trained: never an override.
NOT_PROTOCOL = ("out", "data_dir", "device", "compile", "checkpoint_every", "trackers",
                "experiment", "image_every", "seed", "recipe")


@dataclass(frozen=True)
class Recipe:
    """One published protocol."""

    name: str
    summary: str  # one line: model and objective
    settings: Mapping[str, Any]  # TrainConfig fields; the rest keep their defaults
    source: str  # the paper and the table or section the figure comes from
    cite: str  # the source in a few words, for tables
    published: float | None  # the paper's test NLL in nats (None: no published figure)
    notes: tuple[str, ...] = ()  # where vaelab's run differs from the paper's, or what to know
    nll_samples: int = 5000  # evaluation: importance samples per test image
    checkpoint: str = "last"  # evaluation: "last" (the trained model) or "best" (early stopping)
    test_images: str = "all 10,000"  # evaluation: which test images (always the whole split)
    pythae: str | None = None  # pythae's reproduction of the same protocol, when it has one

    @property
    def epochs(self) -> int:
        return int(self.settings["epochs"])

    def evaluation(self) -> str:
        return (f"test NLL with K = {self.nll_samples} importance samples on {self.test_images} "
                f"test images, {self.checkpoint} checkpoint")


RECIPES: Registry[Recipe] = Registry("recipe")


def _add(recipe: Recipe) -> None:
    RECIPES.add(recipe.name, recipe)


_BURDA_SOURCE = "Burda, Grosse & Salakhutdinov (2015), Importance Weighted Autoencoders, Table 1"
_BURDA_CITE = "Burda et al. 2015, Table 1"
# Section 5 of the paper: all 60,000 training images, binarised anew at every use; Adam with
# beta1 0.9, beta2 0.999, epsilon 1e-4, batches of 20; 3^i passes at 1e-3 * 10^(-i/7), i = 0..7.
_BURDA = {"dataset": "mnist", "val_size": 0, "binarize": "dynamic", "z_dim": 50,
          "batch_size": 20, "lr": 1e-3, "adam_eps": 1e-4, "adam_betas": (0.9, 0.999),
          "lr_schedule": "burda", "epochs": 3280}
_BURDA_NOTES = (
    "no validation split (all 60,000 training images, as the paper): the best checkpoint is "
    "chosen on the training loss; the protocol scores the last one, as the paper does",)
_K_AVERAGED = ("the VAE with k > 1 averages k single-sample ELBO terms (the paper's VAE "
               "objective with k samples); vaelab's uses the closed-form KL inside each",)

for _k, _nll in ((1, 86.76), (5, 86.47), (50, 86.35)):
    _add(Recipe(f"burda-vae-k{_k}", f"VAE, 784-200-200-50 tanh, k = {_k}",
                {**_BURDA, "model": "vae", "iw_samples": _k}, f"{_BURDA_SOURCE}, VAE k = {_k}",
                _BURDA_CITE, _nll, _BURDA_NOTES + (_K_AVERAGED if _k > 1 else ())))
for _k, _nll in ((5, 85.54), (50, 84.78)):
    _add(Recipe(f"burda-iwae-k{_k}", f"IWAE, 784-200-200-50 tanh, k = {_k}",
                {**_BURDA, "model": "iwae", "iw_samples": _k}, f"{_BURDA_SOURCE}, IWAE k = {_k}",
                _BURDA_CITE, _nll, _BURDA_NOTES))
for _name, _k, _nll, _what in (("burda-vae2-k1", 1, 85.33, "VAE"),
                               ("burda-iwae2-k50", 50, 82.90, "IWAE")):
    _add(Recipe(_name, f"{_what}, two stochastic layers 784-100-100-100-50-50-50 tanh, k = {_k}",
                {**_BURDA, "model": "burda2", "iw_samples": _k},
                f"{_BURDA_SOURCE}, two stochastic layers, {_what} k = {_k}", _BURDA_CITE, _nll,
                _BURDA_NOTES))

_add(Recipe(
    "vampprior", "VampPrior VAE, one stochastic layer, 500 pseudo-inputs",
    # Section 4 and the authors' code: 50,000 training / 10,000 validation images, dynamic
    # binarisation, z of 40, Adam 5e-4, batches of 100, KL warm-up over 100 epochs, at most
    # 2,000 epochs with early stopping on the validation loss.
    {"model": "vamp", "dataset": "mnist", "val_size": 10_000, "binarize": "dynamic",
     "z_dim": 40, "n_pseudo_inputs": 500, "batch_size": 100, "lr": 5e-4, "kl_warmup": 100,
     "epochs": 2000},
    "Tomczak & Welling (2018), VAE with a VampPrior, Table 2, VAE (L = 1) + VampPrior",
    "Tomczak & Welling 2018, Table 2", 85.57,
    ("the network differs from the paper's: vaelab's vamp has Burda's 200-200 tanh layers; the "
     "paper's has two gated layers of 300 units (z of 40 in both)",
     "the paper stops early (a look-ahead of 50 epochs); vaelab trains every epoch and scores "
     "the epoch with the best validation loss (best.safetensors), which is the epoch early "
     "stopping would have returned or one with a lower validation loss"),
    checkpoint="best", pythae="85.79 (pythae's README, against the same 85.57)"))

_add(Recipe(
    "seed-study", "the original study's network (seed), z_dim 20, grey-level pixels",
    {"model": "seed", "dataset": "mnist", "z_dim": 20, "batch_size": 32, "lr": 1e-3,
     "epochs": 100},
    "the latent-space study this project grew from (docs/study.md), one z_dim",
    "docs/study.md", None,
    ("grey-level pixels (binarize none), as the study: its NLL is a cross-entropy, not "
     "comparable with binarised-MNIST likelihoods",)))


def recipe_settings(name: str, budget_epochs: int | None = None) -> dict[str, Any]:
    """The recipe's settings; with ``budget_epochs``, compressed into that many epochs."""
    recipe = RECIPES.get(name)
    settings = {**recipe.settings, "recipe": name}
    if budget_epochs is None:
        return settings
    if not 1 <= budget_epochs <= recipe.epochs:
        raise VaelabError(f"--budget-epochs must be from 1 to the {recipe.epochs} epochs of "
                          f"{name}, got {budget_epochs}")
    settings["epochs"] = budget_epochs
    for key in EPOCH_COUNTED:
        value = settings.get(key, 0)
        if value:  # a part of the run keeps its share of it, at least one epoch
            settings[key] = max(1, round(value * budget_epochs / recipe.epochs))
    return settings


@dataclass(frozen=True)
class RecipeRun:
    """How a run follows its recipe."""

    recipe: Recipe
    epochs: int  # the run's epochs
    overrides: dict[str, Any] = field(default_factory=dict)  # settings differing from the recipe

    @property
    def compressed(self) -> bool:
        return self.epochs < self.recipe.epochs

    @property
    def full(self) -> bool:
        return not self.compressed and not self.overrides

    def label(self) -> str:
        """``burda-vae-k1, compressed: 20 of 3,280 epochs`` and the like, for every report."""
        parts = [f"{self.epochs:,} of {self.recipe.epochs:,} epochs, schedule compressed"
                 if self.compressed else "full length"]
        if self.overrides:
            parts.append("modified: " + ", ".join(f"{k}={_shown(v)}"
                                                  for k, v in self.overrides.items()))
        else:
            parts.append("the recipe's settings")
        return f"{self.recipe.name} ({'; '.join(parts)})"

    def brief(self) -> str:
        """The label in a few words, for a table: ``burda-vae-k1 (compressed 20/3280)``."""
        how = [f"compressed {self.epochs}/{self.recipe.epochs}"] if self.compressed else []
        how += ["modified"] if self.overrides else []
        return f"{self.recipe.name} ({', '.join(how) or 'full'})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.recipe.name, "source": self.recipe.source,
                "published_nll": self.recipe.published, "recipe_epochs": self.recipe.epochs,
                "epochs": self.epochs, "compressed": self.compressed, "full": self.full,
                "overrides": self.overrides, "evaluation": self.recipe.evaluation(),
                "label": self.label()}


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def recipe_run(config: TrainConfig) -> RecipeRun | None:
    """The recipe ``config`` follows and how (None for a run without a recipe).

    The run is compared with the recipe compressed to the run's epochs (its own settings for a
    full-length run): every setting that differs, bookkeeping (``NOT_PROTOCOL``) aside, is an
    override.
    """
    from vaelab.config import TrainConfig

    if config.recipe is None:
        return None
    recipe = RECIPES.get(config.recipe)
    budget = config.epochs if config.epochs < recipe.epochs else None
    expected = TrainConfig(**recipe_settings(recipe.name, budget))
    overrides = {f.name: getattr(config, f.name) for f in fields(TrainConfig)
                 if f.name not in NOT_PROTOCOL
                 and getattr(config, f.name) != getattr(expected, f.name)}
    return RecipeRun(recipe, config.epochs, overrides)
