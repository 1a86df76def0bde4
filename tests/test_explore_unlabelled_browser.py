"""The explorer page of a run on unlabelled images, in Debian's Chromium: one row and one colour
for the map, no legend, pick-and-interpolate without class names, no errors.

Skips when Chromium or Playwright is missing (never downloads a browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datafiles import known_arrays
from vaelab.config import TrainConfig
from vaelab.explore import write_explorer
from vaelab.training import RunOptions, fit

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """explorer.html of one-epoch runs (z_dim 1 and 2) on 300 unlabelled images (.npy)."""
    root = tmp_path_factory.mktemp("unlabelled")
    np.save(root / "bitmaps.npy", known_arrays(n_train=300)["train_images"].reshape(-1, 784))
    made = {}
    for z_dim in (1, 2):
        run = root / f"z{z_dim}"
        fit(TrainConfig(model="mlp", z_dim=z_dim, dataset=str(root / "bitmaps.npy"), epochs=1,
                        batch_size=100, device="cpu", out=str(run)), RunOptions(pictures=False))
        made[z_dim] = write_explorer(run).path
    return made


@pytest.mark.parametrize("z_dim", [1, 2])
def test_an_unlabelled_map_picks_and_interpolates(browser: Any, pages: dict[int, Path],
                                                  z_dim: int) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(pages[z_dim].resolve().as_uri())
    page.wait_for_function("window.vaelabExplorer !== undefined")
    assert page.locator("#legend li").count() == 0
    caption = page.locator("#map-caption").inner_text()
    assert ("unlabelled" in caption) == (z_dim == 1)
    box = page.locator("#map").bounding_box()
    for index in (0, 1):
        x, y = page.evaluate(f"vaelabExplorer.pointPosition({index})")
        assert 0 < x < box["width"] and 0 < y < box["height"]  # on the map, not off it
        page.mouse.click(box["x"] + x, box["y"] + y)
    assert page.locator("#interpolation").is_visible()
    assert page.locator("#strip button").count() == 10
    # The pick is described without a class name (the labelled page says "(7)").
    assert page.locator("#map-status").text_content() == "picked test image 2; interpolation shown"
    page.close()
    assert errors == [], errors
