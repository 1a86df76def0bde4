"""The explorer page in a real browser: Debian's Chromium driven by Playwright.

Skips when Chromium or Playwright is missing (never downloads a browser). Screenshots go to
test-artifacts/ at desktop and phone width.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from conftest import REPO, make_digits, write_idx
from vaelab.config import TrainConfig
from vaelab.explore import write_explorer
from vaelab.models import VAE, ModelConfig
from vaelab.models.registry import ModelEntry, model_registry
from vaelab.runs.rebuild import load_run
from vaelab.training import RunOptions, fit

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
DATASET = "tiny-explore"


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
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tiny synthetic digits registered as a dataset for this module (600 train, 100 test)."""
    import hashlib

    from vaelab.data.datasets import DatasetSpec, dataset_registry
    from vaelab.data.idx import decompressed_bytes

    root = tmp_path_factory.mktemp("data")
    folder = root / DATASET
    folder.mkdir()
    arrays = {"train": make_digits(600, seed=1), "t10k": make_digits(100, seed=2)}
    sums = {}
    for prefix, (images, labels) in arrays.items():
        kind = "train" if prefix == "train" else "test"
        for part, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = write_idx(folder / f"{prefix}-{part}-ubyte.gz", array)
            digest = hashlib.sha256(decompressed_bytes(path)).hexdigest()
            sums[f"{kind}_{part.split('-')[0]}"] = digest
    dataset_registry._entries[DATASET] = DatasetSpec(name=DATASET, description="test", sha256=sums)
    yield root
    dataset_registry._entries.pop(DATASET, None)


@pytest.fixture(scope="module")
def runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One-epoch runs of the three explorable presets (and z_dim 1), each with explorer.html."""
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for key, model, z_dim in (("mlp", "mlp", 2), ("seed", "seed", 20), ("conv", "conv", 6),
                              ("mlp-1", "mlp", 1)):
        run = out / f"{model}-{z_dim}"
        fit(TrainConfig(model=model, z_dim=z_dim, dataset=DATASET, data_dir=str(data_root),
                        epochs=1, batch_size=100, device="cpu", out=str(run)),
            RunOptions(pictures=False))
        write_explorer(run, data_dir=str(data_root))
        made[key] = run
    return made


@dataclass
class Watched:
    """A page with everything it logged and requested."""

    page: Any
    url: str
    errors: list[str] = field(default_factory=list)  # console errors and warnings, exceptions
    requests: list[str] = field(default_factory=list)  # every request the page started
    routed: list[str] = field(default_factory=list)  # those that got past the browser's checks
    failed: dict[str, str] = field(default_factory=dict)  # url -> why it failed

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        outside = [u for u in self.requests if u != self.url and not u.startswith("data:")]
        assert outside == [], outside

    def pixels(self) -> list[int]:
        return self.page.evaluate("vaelabExplorer.canvasPixels()")


def _open(browser: Any, html: Path, width: int = 1280, height: int = 900) -> Watched:
    page = browser.new_page(viewport={"width": width, "height": height})
    watched = Watched(page, html.resolve().as_uri())
    page.on("console", lambda m: m.type in ("error", "warning") and watched.errors.append(m.text))
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("requestfailed", lambda request: watched.failed.update({request.url: request.failure}))

    def route(route: Any) -> None:
        # Anything that is not the file itself is stopped before it leaves the machine.
        watched.routed.append(route.request.url)
        route.continue_() if route.request.url == watched.url else route.abort()

    page.route("**/*", route)
    page.goto(watched.url)
    page.wait_for_function("window.vaelabExplorer !== undefined")
    return watched


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Watched] = []

    def opener(html: Path, width: int = 1280, height: int = 900) -> Watched:
        pages.append(_open(browser, html, width, height))
        return pages[-1]

    yield opener
    for watched in pages:
        watched.page.close()


@pytest.mark.parametrize("model", ["mlp", "seed", "conv"])
def test_page_decoder_matches_pytorch(runs: dict[str, Path], open_page: Any, model: str) -> None:
    loaded = load_run(runs[model])
    z = torch.randn(20, loaded.model.z_dim, generator=torch.Generator().manual_seed(7)) * 1.5
    with torch.no_grad():
        expected = loaded.model.decode_probs(z).reshape(20, -1).numpy()
    watched = open_page(runs[model] / "explorer.html")
    got = np.array([watched.page.evaluate("z => vaelabExplorer.decode(z)", row) for row in
                    z.tolist()])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    # What the canvas shows is the same image, rounded to 8 bits.
    watched.page.evaluate("z => vaelabExplorer.setLatent(z)", z[0].tolist())
    shown = np.array(watched.pixels())
    assert np.abs(shown - expected[0] * 255).max() <= 1.0
    watched.assert_clean()


def test_slider_moves_change_the_canvas(runs: dict[str, Path], open_page: Any) -> None:
    watched = open_page(runs["seed"] / "explorer.html")
    page = watched.page
    assert page.locator("input[type=range]").count() == 20
    before = watched.pixels()
    page.focus("#z1")
    page.keyboard.press("End")  # a real input event from the keyboard
    assert page.evaluate("vaelabExplorer.latent()[0]") == pytest.approx(
        float(page.get_attribute("#z1", "max")))
    after_key = watched.pixels()
    assert after_key != before
    box = page.locator("#z2").bounding_box()
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # near the low end
    assert page.evaluate("vaelabExplorer.latent()[1]") < -2
    assert watched.pixels() != after_key
    page.click("#reset")
    assert page.evaluate("vaelabExplorer.latent()") == [0] * 20
    assert watched.pixels() == before
    page.click("#random")
    assert watched.pixels() != before
    watched.assert_clean()


def test_dragging_on_the_map_changes_the_canvas(runs: dict[str, Path], open_page: Any) -> None:
    for model in ("mlp", "conv"):  # a latent-space map and a PCA map
        watched = open_page(runs[model] / "explorer.html")
        page = watched.page
        box = page.locator("#map").bounding_box()
        start = watched.pixels()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        seen = set()
        for step in range(1, 6):
            page.mouse.move(box["x"] + box["width"] * (0.5 + 0.08 * step),
                            box["y"] + box["height"] * (0.5 - 0.08 * step))
            seen.add(tuple(watched.pixels()))
        page.mouse.up()
        assert len(seen) == 5 and tuple(start) not in seen
        watched.assert_clean()


def test_two_clicked_points_show_the_interpolation(runs: dict[str, Path],
                                                  open_page: Any) -> None:
    watched = open_page(runs["conv"] / "explorer.html")
    page = watched.page
    box = page.locator("#map").bounding_box()
    for index in (0, 1):
        x, y = page.evaluate(f"vaelabExplorer.pointPosition({index})")
        page.mouse.click(box["x"] + x, box["y"] + y)
    assert page.locator("#interpolation").is_visible()
    frames = page.locator("#strip button")
    assert frames.count() == 10
    # The end frames are the two test images' latent means.
    for frame, index in ((0, 0), (9, 1)):
        before = watched.pixels()
        frames.nth(frame).click()
        assert page.evaluate("vaelabExplorer.latent()") == pytest.approx(
            page.evaluate(f"vaelabExplorer.pointLatent({index})"), abs=1e-6)
        assert watched.pixels() != before
    x, y = page.evaluate("vaelabExplorer.pointPosition(0)")
    page.mouse.click(box["x"] + x, box["y"] + y)  # a third click starts a new pair
    assert page.locator("#interpolation").is_hidden()
    watched.assert_clean()


def test_map_works_from_the_keyboard(runs: dict[str, Path], open_page: Any) -> None:
    watched = open_page(runs["mlp"] / "explorer.html")
    page = watched.page
    page.focus("#reset")
    page.keyboard.press("Tab")  # reset -> random
    page.keyboard.press("Tab")  # random -> the map
    assert page.evaluate("document.activeElement.id") == "map"
    before = watched.pixels()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowUp")
    z = page.evaluate("vaelabExplorer.latent()")
    assert z[0] > 0 and z[1] > 0 and watched.pixels() != before
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    assert page.locator("#strip button").count() == 10
    page.keyboard.press("Escape")
    assert page.locator("#interpolation").is_hidden()
    watched.assert_clean()


@pytest.mark.parametrize("run", ["mlp", "mlp-1"])
def test_manifold_background_for_one_and_two_latent_dims(runs: dict[str, Path], open_page: Any,
                                                         run: str) -> None:
    watched = open_page(runs[run] / "explorer.html")
    page = watched.page
    plain = page.locator("#map").screenshot()
    page.check("#manifold")
    assert page.locator("#map").screenshot() != plain
    # Dragging across the map moves z1 (and z2 where there is one).
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    left = page.evaluate("vaelabExplorer.latent()")
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5)
    page.mouse.up()
    right = page.evaluate("vaelabExplorer.latent()")
    assert len(left) == (1 if run == "mlp-1" else 2) and right[0] > left[0]
    watched.assert_clean()


def test_no_manifold_beyond_two_latent_dims(runs: dict[str, Path], open_page: Any) -> None:
    watched = open_page(runs["conv"] / "explorer.html")  # z_dim 6: a PCA map
    assert watched.page.locator("#manifold-option").is_hidden()
    assert "principal components" in watched.page.text_content("#map-caption")
    watched.assert_clean()


def test_policy_blocks_outside_requests(runs: dict[str, Path], open_page: Any) -> None:
    watched = open_page(runs["mlp"] / "explorer.html")
    blocked = watched.page.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
        const img = document.createElement('img');
        img.src = 'https://example.com/pixel.png';
        document.body.appendChild(img);
    })""")
    assert blocked.startswith("img-src")
    watched.page.wait_for_function("document.querySelector('img').complete")
    # The browser refused it itself: it never reached the network layer.
    assert watched.failed == {"https://example.com/pixel.png": "csp"}
    assert watched.routed == [watched.url]


@pytest.mark.parametrize(("width", "height", "name"), [(1280, 900, "desktop"), (390, 844, "phone")])
def test_screenshots_at_desktop_and_phone_width(runs: dict[str, Path], open_page: Any,
                                                width: int, height: int, name: str) -> None:
    watched = open_page(runs["mlp"] / "explorer.html", width, height)
    page = watched.page
    page.evaluate("vaelabExplorer.setLatent([0.5, -0.5])")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"explorer-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    watched.assert_clean()


def test_decodes_per_second_is_measured(runs: dict[str, Path], open_page: Any) -> None:
    watched = open_page(runs["seed"] / "explorer.html")
    result = watched.page.evaluate("""() => {
        const start = performance.now();
        const measured = vaelabExplorer.benchmark(300);
        return { ...measured, around: (performance.now() - start) / 1000 };
    }""")
    # It decodes for the 300 ms asked, reports that time in seconds (within the time the call
    # took, timed around it), and the rate is the decodes over that time.
    assert 0.3 <= result["seconds"] <= result["around"]
    assert result["perSecond"] == pytest.approx(result["decodes"] / result["seconds"], rel=1e-12)
    watched.assert_clean()


# --- a decoder the page cannot run: decodings precomputed on a grid --------------------------

class _LeakyVAE(VAE):
    """A user's kind of model: its decoder uses LeakyReLU, which the page has no code for."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.LeakyReLU(),
                                     nn.Linear(64, 2 * config.z_dim))
        self.decoder = nn.Sequential(nn.Linear(config.z_dim, 64), nn.LeakyReLU(),
                                     nn.Linear(64, 784), nn.Unflatten(1, (1, 28, 28)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.decoder(z)
        return logits


@pytest.fixture(scope="module")
def grid_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One-epoch runs of the LeakyReLU model at z_dim 2 (the map is the latent plane) and 5
    (a PCA plane), each with its grid page."""
    model_registry._entries["leaky-grid"] = ModelEntry(_LeakyVAE, "test model")
    out = tmp_path_factory.mktemp("grid-runs")
    made = {}
    for z_dim in (2, 5):
        run = out / f"leaky-{z_dim}"
        fit(TrainConfig(model="leaky-grid", z_dim=z_dim, dataset=DATASET,
                        data_dir=str(data_root), epochs=1, batch_size=100, device="cpu",
                        out=str(run)), RunOptions(pictures=False))
        assert write_explorer(run, data_dir=str(data_root)).decoder_kind == "grid"
        made[z_dim] = run
    yield made
    model_registry._entries.pop("leaky-grid", None)


def _grid(run: Path) -> tuple[dict[str, Any], np.ndarray]:
    text = (run / "explorer.html").read_text()
    data = json.loads(text.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    return data, np.array(data["decoder"]["grid"]["steps"])


@pytest.mark.parametrize("z_dim", [2, 5])
def test_grid_page_shows_pytorchs_decodings(grid_runs: dict, open_page: Any, z_dim: int) -> None:
    from vaelab.explore.grid import grid_latents
    from vaelab.explore.latents import LatentSummary

    run = grid_runs[z_dim]
    data, steps = _grid(run)
    latents = data["latents"]
    # The grid's cell centres, from the page's own map: each decodes to PyTorch's image.
    summary = LatentSummary(np.zeros((1, z_dim)), np.zeros(1), latents["map_kind"],
                            np.zeros((1, 2)), np.array(latents["map_mean"]),
                            np.array(latents["map_basis"]), [],
                            tuple(data["decoder"]["grid"]["extent"]), np.zeros(z_dim),
                            np.zeros(z_dim), np.zeros(z_dim), np.zeros(z_dim))
    centres = grid_latents(summary, tuple(steps))[:: 97]
    model = load_run(run).model
    with torch.no_grad():
        expected = model.decode_probs(torch.from_numpy(centres).float()).reshape(
            len(centres), -1).numpy()
    watched = open_page(run / "explorer.html")
    page = watched.page
    got = np.array([page.evaluate("z => vaelabExplorer.decode(z)", row)
                    for row in centres.tolist()])
    assert np.abs(got - expected).max() <= 0.5 / 255 + 1e-6
    info = page.text_content("#model-info")
    assert "cannot run the model's decoder" in info and "LeakyReLU" in info
    assert f"{steps[0]} × {steps[1]}" in info
    # The option shows the grid behind the map, whatever the latent size.
    plain = page.locator("#map").screenshot()
    page.check("#manifold")
    assert page.locator("#map").screenshot() != plain
    watched.assert_clean()


def test_grid_page_stays_on_the_map_plane_beyond_two_dims(grid_runs: dict,
                                                          open_page: Any) -> None:
    watched = open_page(grid_runs[5] / "explorer.html")
    page = watched.page
    # No slider and no prior draw can leave the plane the grid covers.
    assert page.locator("input[type=range]").count() == 5
    assert all(page.locator(f"#z{d}").is_disabled() for d in range(1, 6))
    assert page.locator("#random").is_hidden()
    # Dragging on the map changes the image; the latent shown is the grid point decoded.
    box = page.locator("#map").bounding_box()
    start = watched.pixels()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.3)
    page.mouse.up()
    assert watched.pixels() != start
    z = page.evaluate("vaelabExplorer.latent()")
    assert np.array(page.evaluate("z => vaelabExplorer.decode(z)", z)) * 255 == pytest.approx(
        np.array(watched.pixels()), abs=1.0)
    # Two picked points still give an interpolation strip.
    for index in (0, 1):
        x, y = page.evaluate(f"vaelabExplorer.pointPosition({index})")
        page.mouse.click(box["x"] + x, box["y"] + y)
    assert page.locator("#strip button").count() == 10
    assert "nearest" in page.text_content("#interpolation-caption")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-grid-desktop.png"), full_page=True)
    watched.assert_clean()


def test_grid_page_sliders_work_in_two_dims(grid_runs: dict, open_page: Any) -> None:
    watched = open_page(grid_runs[2] / "explorer.html")
    page = watched.page
    before = watched.pixels()
    page.focus("#z1")
    page.keyboard.press("End")
    assert watched.pixels() != before
    page.click("#random")  # z_dim 2: the grid covers the prior's ±5, so draws are shown
    watched.assert_clean()
