"""Make the README's screenshot of the review queue: ``python -m tests.e2e.screenshot docs/review-queue.png``.

The library is the one-collision library the page tests use, served by ``watcherd serve``
as a process and shot by the same headless Chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from tests.e2e.test_page import CHROMIUM, playwright, serving
from tests.helpers import collided_library


def main(out: Path) -> None:
    """Serve a one-collision library and save the top of its review queue as ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = collided_library(Path(tmp) / "lib")
        with serving(root, Path(tmp) / "serve.log") as (url, _), playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 760})
                page.goto(url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(out))
            finally:
                browser.close()
    with Image.open(out) as shot:
        small = shot.quantize(256)  # a palette: the README's picture at a fraction of the bytes
    small.save(out, optimize=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/review-queue.png"))
