"""The review page as a user meets it: ``watcherd serve`` as a process, driven by headless Chromium.

Playwright cannot download its own browser here; Debian's ``chromium`` (installed by
``.ci/run`` when missing) is launched by path.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import collided_library, near_library, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def cli(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "watcherd", *args, "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, str]]:
    """A library with one collision (or what ``request.param`` makes), and ``watcherd serve`` on it;
    yields (root, URL)."""
    root = getattr(request, "param", collided_library)(tmp_path / "lib")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcherd", "serve", str(root), "--port", str(free_port())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "http://" in log.read_text(), timeout=30, what="the URL")
        text = log.read_text()
        url = text[text.index("http://") :].split()[0]
        wait_for(lambda: _answers(url), timeout=30, what="the server to answer")
        yield root, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "api/dupes", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.timeout(180)
def test_keys_decide_and_undo_the_first_item(served: tuple[Path, str]) -> None:
    root, url = served
    (item,) = cli("dupes", str(root))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            first = page.locator("[data-collision-id]").first
            assert first.get_attribute("data-collision-id") == item["id"]
            page.keyboard.press("f")
            assert "flipped" in (first.get_attribute("class") or "")
            page.keyboard.press("d")
            page.wait_for_selector(f'[data-collision-id="{item["id"]}"][data-decision="distinct"]')
            (decided,) = cli("dupes", str(root), "--all")
            assert decided["decision"] == "distinct" and cli("dupes", str(root)) == []
            page.keyboard.press("u")
            page.wait_for_selector(f'[data-collision-id="{item["id"]}"]:not([data-decision])')
            assert [d["id"] for d in cli("dupes", str(root))] == [item["id"]]
        finally:
            browser.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("served", [near_library], indirect=True)
def test_a_near_group_is_kept_by_its_button_and_undone(served: tuple[Path, str]) -> None:
    root, url = served
    (group,) = cli("dupes", str(root), "--near", "4")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            item = page.locator(f'[data-collision-id="{group["id"]}"][data-kind="near"]')
            assert "(existing)" in item.inner_text() and "(newcomer)" in item.inner_text()
            item.locator('[data-decision="keep-existing"]').click()
            page.wait_for_selector(f'[data-collision-id="{group["id"]}"][data-decision="keep-existing"]')
            assert cli("dupes", str(root), "--near", "4") == []
            (decided,) = cli("dupes", str(root), "--near", "4", "--all")
            assert decided["decision"] == "keep-existing" and decided["name"] == group["existing"]
            page.keyboard.press("u")
            page.wait_for_selector(f'[data-collision-id="{group["id"]}"]:not([data-decision])')
            assert [g["id"] for g in cli("dupes", str(root), "--near", "4")] == [group["id"]]
        finally:
            browser.close()
