"""Decodes per second of the explorer page's JavaScript decoder in Chromium, against PyTorch.

For each run directory: write its explorer.html, open it in headless Chromium (Debian's
/usr/bin/chromium through Playwright), time the page's decoder on one latent vector at a time,
and time PyTorch's ``decode_probs`` on one vector at a time in this process as the reference.

    python benchmarks/explore_decode_speed.py RUN_DIR [RUN_DIR ...] [--seconds 2]
        [--checkpoint last] [--screenshots DIR]   # DIR: screenshots of the first page
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytorch_rate(model: object, z_dim: int, seconds: float) -> float:
    import torch

    z = torch.randn(1, z_dim)
    with torch.no_grad():
        for _ in range(20):
            model.decode_probs(z)  # type: ignore[attr-defined]
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.decode_probs(torch.randn(1, z_dim))  # type: ignore[attr-defined]
            count += 1
    return count / (time.perf_counter() - start)


def screenshots(browser: object, html: Path, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for label, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
        page.goto(html.resolve().as_uri())
        page.wait_for_function("window.vaelabExplorer !== undefined")
        box = page.locator("#map").bounding_box()
        x0, y0 = page.evaluate("vaelabExplorer.pointPosition(0)")
        x1, y1 = page.evaluate("vaelabExplorer.pointPosition(3)")
        page.mouse.click(box["x"] + x0, box["y"] + y0)
        page.mouse.click(box["x"] + x1, box["y"] + y1)
        if page.locator("#manifold-option").is_visible() and label == "desktop":
            page.check("#manifold")
        page.locator("#strip button").nth(4).click()
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per measurement")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from vaelab.cli.output import format_table
    from vaelab.explore import write_explorer
    from vaelab.runs.rebuild import load_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_ARGS)
        for index, run_dir in enumerate(args.run_dirs):
            loaded = load_run(run_dir, which=args.checkpoint)
            html = Path(tmp) / f"explorer-{index}.html"
            result = write_explorer(run_dir, html, checkpoint=args.checkpoint)
            page = browser.new_page()
            page.goto(html.resolve().as_uri())
            page.wait_for_function("window.vaelabExplorer !== undefined")
            page.evaluate("vaelabExplorer.benchmark(300)")  # let the engine compile the loops
            js = page.evaluate(f"vaelabExplorer.benchmark({int(args.seconds * 1000)})")
            page.close()
            torch_rate = pytorch_rate(loaded.model, loaded.model.z_dim, args.seconds)
            rows.append([loaded.config.model, loaded.model.z_dim, result.size_bytes / 1e6,
                         result.n_weights, round(js["perSecond"]), round(torch_rate),
                         js["perSecond"] / torch_rate, result.max_abs_error])
            if args.screenshots is not None and index == 0:
                screenshots(browser, html, args.screenshots, "explorer")
        browser.close()
    print(format_table(rows, ["model", "z_dim", "page MB", "decoder weights",
                              "page decodes/s", "PyTorch decodes/s (batch 1)", "page / PyTorch",
                              "max pixel diff"]))


if __name__ == "__main__":
    main()
