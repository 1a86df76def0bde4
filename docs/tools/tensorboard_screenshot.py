"""Redraw docs/images/tensorboard-study.png: a small study's curves in TensorBoard.

Trains a short stacked study with `vaelab study --quick --tracker tensorboard` (five z_dims,
three epochs on mnist-sample, batch 256) in a temporary folder, serves it with a real
`tensorboard --logdir STUDY_DIR`, and photographs TensorBoard's Scalars page in headless
Chromium (driven by Playwright). Run it by hand from the repository root:

    python docs/tools/tensorboard_screenshot.py [--classifier-dir DIR] [--keep DIR]

It needs the test requirements (tensorboard, playwright) and Chromium at /usr/bin/chromium.
The study's report needs the digit classifier: it is trained once (a minute or two) when the
cache (`--classifier-dir`, else vaelab's default) does not hold it yet.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "images" / "tensorboard-study.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
Z_DIMS = (1, 2, 5, 10, 20)
# The Scalars dashboard with the loss and KL charts, unsmoothed (three points per curve).
PAGE = "#scalars&_smoothingWeight=0&tagFilter=%5E(loss%7Ckl)%2F"


def train_study(study: Path, classifier_dir: str | None) -> None:
    command = [sys.executable, "-m", "vaelab", "study", "--quick",
               "--z-dims", ",".join(map(str, Z_DIMS)), "--epochs", "3", "--batch-size", "256",
               "--device", "cpu", "--tracker", "tensorboard", "--out", str(study)]
    if classifier_dir:
        command += ["--classifier-dir", classifier_dir]
    subprocess.run(command, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_runs(url: str, count: int, timeout: float = 120.0) -> None:
    """Until TensorBoard lists ``count`` runs (it loads event files in the background)."""
    import json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/data/runs", timeout=5) as response:
                if len(json.loads(response.read())) >= count:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"TensorBoard at {url} did not list {count} runs in {timeout:.0f} s")


def photograph(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/{PAGE}", wait_until="networkidle")
            page.wait_for_selector("tf-scalar-card", timeout=60_000)
            # Every point inside the axes: the z_dim = 20 curves are the "outliers" it would cut.
            outliers = page.get_by_role("checkbox", name="Ignore outliers in chart scaling")
            outliers.uncheck()
            page.wait_for_timeout(3000)  # the charts draw after their data arrives
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"PNG to write (default {OUT})")
    parser.add_argument("--classifier-dir", default=None,
                        help="the study's classifier cache (default: vaelab's own)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="train the study here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="vaelab-tensorboard-"))
    study = work / "study"
    try:
        if not (study / "z1" / "tensorboard").is_dir():
            train_study(study, args.classifier_dir)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # Started in the work folder, so the page shows the log directory as just "study".
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir",
                                   study.name, "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_runs(url, len(Z_DIMS))
            photograph(url, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
