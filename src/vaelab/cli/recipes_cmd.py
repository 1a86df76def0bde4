"""`vaelab recipes [NAME]`: the named published protocols, or one of them in full."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "recipes", help="the named recipes: published training protocols with their figures",
        description="List the recipes, each a paper's whole protocol (model, z_dim, K, batch, "
        "Adam and its schedule, binarisation, data, epochs, and the evaluation its figure was "
        "measured with), or show one in full. Train one with `vaelab train --recipe NAME "
        "[--budget-epochs N] --out DIR`; any of its settings can be overridden flag by flag.")
    parser.add_argument("name", nargs="?", metavar="NAME", help="show this recipe in full")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(handler=run)


def _as_dict(recipe: Any) -> dict[str, Any]:
    return {"name": recipe.name, "summary": recipe.summary, "settings": dict(recipe.settings),
            "source": recipe.source, "published_nll": recipe.published,
            "evaluation": {"nll_samples": recipe.nll_samples, "test_images": recipe.test_images,
                           "checkpoint": recipe.checkpoint},
            "pythae": recipe.pythae, "notes": list(recipe.notes)}


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def run(args: argparse.Namespace) -> int:
    from vaelab.cli.output import format_table, print_json
    from vaelab.lr_schedules import LR_SCHEDULES
    from vaelab.recipes import RECIPES

    if args.name is not None:
        recipe = RECIPES.get(args.name)  # an unknown name: one line listing the known ones
        if args.json:
            print_json(_as_dict(recipe))
            return 0
        print(f"{recipe.name}: {recipe.summary}")
        print(f"source: {recipe.source}")
        published = "none" if recipe.published is None else f"{recipe.published:.2f} nats"
        print(f"published test NLL: {published}")
        if recipe.pythae:
            print(f"pythae: {recipe.pythae}")
        print(f"evaluation: {recipe.evaluation()}")
        rows = [[key, _shown(value)] for key, value in recipe.settings.items()]
        print(format_table(rows, ["setting", "value"]))
        schedule = recipe.settings.get("lr_schedule", "constant")
        print(f"learning-rate schedule {schedule}: {LR_SCHEDULES.get(schedule).summary}")
        for note in recipe.notes:
            print(f"note: {note}")
        print(f"train:    vaelab train --recipe {recipe.name} --out runs/{recipe.name}"
              "   (add --budget-epochs N for a compressed run)")
        print(f"evaluate: vaelab evaluate runs/{recipe.name} --nll   (the protocol above)")
        return 0
    recipes = [RECIPES.get(name) for name in RECIPES.names()]
    if args.json:
        print_json([_as_dict(r) for r in recipes])
        return 0
    rows = [[r.name, r.settings["model"], r.settings.get("iw_samples", 1),
             r.settings["batch_size"], r.settings.get("lr_schedule", "constant"),
             r.settings["epochs"], "-" if r.published is None else f"{r.published:.2f}",
             r.cite] for r in recipes]
    print(format_table(rows, ["recipe", "model", "K", "batch", "schedule", "epochs",
                              "published NLL", "source"]))
    print("\n`vaelab recipes NAME` shows one in full; `vaelab train --recipe NAME "
          "[--budget-epochs N] --out DIR` trains it.")
    return 0
