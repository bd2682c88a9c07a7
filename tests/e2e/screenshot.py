"""Make the README's screenshots: ``python -m tests.e2e.screenshot [docs]``.

The showcase library (``tests.e2e.pictures``: a camera original and a recompressed copy,
a near group of three, a HEIC pair), served by ``watcherd serve`` as a process and shot by
the same headless Chromium as the page tests, at 1280x800:

- ``review-queue.png``: the queue with a pair (A/B flip);
- ``review-near.png``: a near group as a grid, its keeper marked;
- ``review-heic.png``: the HEIC pair side by side (its preview made in the sandbox);
- ``review-diff.png``: the pair's difference;
- ``tags.png`` and ``search.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from tests.e2e.conftest import CHROMIUM
from tests.e2e.pictures import showcase_library
from tests.e2e.test_page import playwright, serving

VIEWPORT = {"width": 1280, "height": 800}


def _save(page: Any, out: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function('Array.from(document.images).every(i => i.complete || i.loading === "lazy")')
    page.screenshot(path=str(out))
    with Image.open(out) as shot:
        small = shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)  # a palette: fewer bytes
    small.save(out, optimize=True)


TO_TOP = "el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 62)"


def _top(page: Any, item: Any) -> Any:
    """``item`` made current and scrolled to just below the top bar."""
    item.click(position={"x": 5, "y": 5})
    page.evaluate(TO_TOP, item.element_handle())
    return item


def main(folder: Path) -> None:
    """Serve the showcase library and save each page's screenshot into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = showcase_library(Path(tmp) / "lib")
        with serving(root, Path(tmp) / "serve.log") as (url, _), playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url)
                _save(page, folder / "review-queue.png")
                pair = _top(page, page.locator("[data-collision-id]").filter(has_text="IMG_2041.JPG").first)
                pair.locator('[data-mode="diff"]').click()
                pair.locator(".diff-pane img:not([hidden])").wait_for()
                _save(page, folder / "review-diff.png")
                _top(page, page.locator('[data-collision-id][data-kind="near"]').first)
                _save(page, folder / "review-near.png")
                heic = _top(page, page.locator('[data-collision-id]:has([data-original$=".heic"])').first)
                heic.locator('[data-mode="side"]').click()
                _save(page, folder / "review-heic.png")
                page.goto(url + "tags?tag=holiday")
                _save(page, folder / "tags.png")
                page.goto(url + "search")
                page.set_input_files('input[type="file"]', str(next((root / "originals").glob("*.jpg"))))
                page.locator('form[enctype="multipart/form-data"] button').click()
                page.locator(".result").first.wait_for()
                _save(page, folder / "search.png")
            finally:
                browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
