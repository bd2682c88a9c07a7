"""The designed review page in headless Chromium: compare modes, facts, previews of every format,
near groups, every key, batches and their undo, the live queue beside a running daemon, and
axe-core's accessibility checks on every page.

One showcase library (``tests.e2e.pictures``) serves the read-only checks; the tests that
decide make their own library, so they can leave it changed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM
from tests.e2e.pictures import camera_jpeg, landscape, showcase_library
from tests.e2e.test_page import playwright, serving
from tests.helpers import cli, encode, running_daemon, wait_for, write

axe = pytest.importorskip("axe_playwright_python.sync_playwright")
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]
expect = playwright.expect
VIEWPORT = {"width": 1280, "height": 800}
SMALL = (480, 320)  # the pictures of the deciding tests: quick to make and to preview


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = showcase_library(tmp_path_factory.mktemp("showcase") / "lib")
    with serving(root, root.parent / "serve.log") as (url, _):
        yield root, url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


def item_with(page: Any, text: str) -> Any:
    return page.locator("[data-collision-id]").filter(has_text=text).first


def loaded(img: Any) -> int:
    """The picture's natural width once it has loaded (0: broken)."""
    img.scroll_into_view_if_needed()
    wait_for(lambda: img.evaluate("i => i.complete"), timeout=60, what="the picture to load")
    return int(img.evaluate("i => i.naturalWidth"))


# --- read-only: modes, facts, previews, near groups, axe ----------------------------------------


def test_each_compare_mode(showcase: tuple[Path, str], page: Any) -> None:
    _, url = showcase
    page.goto(url)
    item = item_with(page, "IMG_5120.HEIC")
    item.click(position={"x": 4, "y": 4})
    viewer = item.locator(".viewer")
    a, b = item.locator('[data-side="existing"] img'), item.locator('[data-side="newcomer"] img')
    # A/B flip is the default: both in the same place at the same size, one shown; f flips.
    assert viewer.get_attribute("data-view") == "flip"
    assert item.locator('[data-mode="flip"]').get_attribute("aria-pressed") == "true"
    assert a.bounding_box() == b.bounding_box()
    expect(a).to_be_visible()
    expect(b).to_be_hidden()
    page.keyboard.press("f")
    expect(b).to_be_visible()
    expect(a).to_be_hidden()
    page.keyboard.press("f")
    expect(a).to_be_visible()
    # Side by side: A left of B.
    item.locator('[data-mode="side"]').click()
    assert viewer.get_attribute("data-view") == "side"
    box_a, box_b = a.bounding_box(), b.bounding_box()
    assert box_a is not None and box_b is not None and box_a["x"] + box_a["width"] <= box_b["x"] + 1
    # 1:1: each at its own pixels, both panned together.
    item.locator('[data-mode="zoom"]').click()
    assert viewer.get_attribute("data-view") == "zoom"
    assert a.evaluate("i => i.getBoundingClientRect().width") == pytest.approx(960, abs=1)
    panes = item.locator(".pane")
    panes.nth(0).evaluate("p => { p.scrollLeft = 0; p.scrollTop = 0; }")
    panes.nth(0).evaluate("p => { p.scrollLeft = p.scrollWidth - p.clientWidth; }")
    wait_for(lambda: panes.nth(1).evaluate("p => p.scrollLeft >= p.scrollWidth - p.clientWidth - 1"), what="B to pan")
    # The difference, made in the sandbox.
    item.locator('[data-mode="diff"]').click()
    diff = item.locator(".diff-pane img")
    expect(diff).to_be_visible(timeout=60_000)
    assert loaded(diff) == 960
    expect(item.locator(".diff-note")).to_contain_text("mean difference", timeout=60_000)


def test_heic_and_tiff_previews_load_and_open_original_serves_the_file(showcase: tuple[Path, str], page: Any) -> None:
    root, url = showcase
    page.goto(url)
    for name in ("IMG_5120.HEIC", "scan-0042.tif"):
        item = item_with(page, name)
        img = item.locator('[data-side="existing"] img')
        assert (img.get_attribute("src") or "").startswith("/preview/")
        assert loaded(img) == 960, name
        opened = item.locator('[data-side="existing"] a.open').get_attribute("href") or ""
        assert opened.startswith("/file/originals/")
        with page.context.expect_page() as tab:
            item.locator('[data-side="existing"] a.open').dispatch_event("click")
        assert tab.value is not None
    previews = list((root / ".watcherd" / "previews").glob("*-full.jpg"))
    assert len(previews) >= 2  # cached beside the catalog


def test_facts_keeper_reasons_and_distances(showcase: tuple[Path, str], page: Any) -> None:
    root, url = showcase
    page.goto(url)
    listed = cli("dupes", str(root), "--near", "4")
    items = page.locator("[data-collision-id]")
    assert [items.nth(i).get_attribute("data-collision-id") for i in range(items.count())] == [d["id"] for d in listed]
    for doc in listed:
        el = page.locator(f'[data-collision-id="{doc["id"]}"]')
        assert el.get_attribute("data-distance") == str(doc.get("max_distance", 0))
    # The near group of the camera original, an upscaled copy and a crop: the camera original kept.
    (group,) = [d for d in listed if d["kind"] == "near" and len(d["names"]) == 3]
    el = page.locator(f'[data-collision-id="{group["id"]}"]')
    keeper = el.locator(".member.keeper")
    assert keeper.get_attribute("data-member") == group["suggested"]
    assert "camera original (Canon EOS 80D)" in (keeper.get_attribute("data-reasons") or "")
    assert "upscaled 2.0x, no camera EXIF" in el.locator(".reasons").inner_text()
    taken = el.locator("[data-taken]")
    sources = {taken.nth(i).get_attribute("data-taken-source") for i in range(taken.count())}
    assert sources == {"exif", "file"}
    camera = el.locator(f'[data-facts="{group["suggested"]}"]')
    assert camera.get_attribute("data-taken") == "2019-06-03T18:40:02"
    assert el.locator('tr.differs[data-row="camera"]').count() == 1
    distances = {m.get_attribute("data-member"): m.get_attribute("data-distance") for m in el.locator(".member").all()}
    assert distances[group["suggested"]] == "0" and all(d is not None and d.isdigit() for d in distances.values())
    # A collision: the facts of both sides, the suggested side with its reasons.
    pair = item_with(page, "IMG_5120.HEIC")
    reasons = pair.locator('[data-side="existing"]').get_attribute("data-reasons") or ""
    assert reasons.startswith("larger file at equal pixels (")
    assert pair.locator('[data-facts="newcomer"]').get_attribute("data-taken-source") == "file"


@pytest.mark.parametrize("where", ["", "tags?tag=holiday", "search?hash=18ffffff1f001000&distance=4"])
def test_no_serious_or_critical_accessibility_violation(showcase: tuple[Path, str], page: Any, where: str) -> None:
    _, url = showcase
    page.goto(url + where)
    page.wait_for_load_state("networkidle")
    if not where:
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_visible()
        found = axe.Axe().run(page).response["violations"]
        page.keyboard.press("Escape")
        expect(page.locator("#help")).to_be_hidden()
    found = axe.Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found]
    assert [b for b in bad if b[1] in ("serious", "critical")] == []


def test_tags_apart_from_sizes_and_search_beside_the_picture(showcase: tuple[Path, str], page: Any) -> None:
    root, url = showcase
    page.goto(url + "tags")
    tags = [t.get_attribute("value") for t in page.locator('input[name="tag"]').all()]
    assert "holiday" in tags and not any(t and t[0].isdigit() for t in tags)
    assert "960x640" in page.locator("#size").inner_text()
    page.fill("#tag-filter", "holi")
    expect(page.locator('li[data-tag="phone"]')).to_be_hidden()
    expect(page.locator('li[data-tag="holiday"]')).to_be_visible()
    page.check('input[name="tag"][value="holiday"]')
    page.locator("#tag-form button").click()
    page.wait_for_url("**/tags?tag=holiday")
    cards = page.locator("figure.card")
    assert cards.count() == len(cli("find", str(root), "--tag", "holiday"))
    assert loaded(cards.first.locator("img")) > 64  # a preview, not the 64-px thumbnail
    assert (cards.first.locator("a").get_attribute("href") or "").startswith("/file/originals/")

    page.goto(url + "search")
    (exact,) = [d for d in cli("dupes", str(root)) if d["kind"] == "exact"]
    page.set_input_files('input[type="file"]', str(root / exact["existing"]["original"]))
    page.locator('form[enctype="multipart/form-data"] button').click()
    expect(page.locator(".searched img")).to_be_visible()
    assert loaded(page.locator(".searched img")) > 0
    assert page.locator('.result[data-distance="0"]').count() >= 1


# --- deciding: keys, near members, batches, the live queue ---------------------------------------


def small_library(root: Path) -> Path:
    """Two collisions (a camera original, then a PNG of the same pixels) and an exact duplicate,
    plus a near group of three (original, upscaled, cropped): small pictures, one scan each."""
    pics = [landscape(SMALL, seed) for seed in (1, 3, 6, 2)]
    w, h = SMALL
    first = {f"thumbs/a/p{i}.jpg": camera_jpeg(im) for i, im in enumerate(pics)}
    second = {
        "thumbs/b/p0.png": encode(pics[0], "PNG"),
        "thumbs/b/p1.png": encode(pics[1], "PNG"),
        "thumbs/b/p2.jpg": first["thumbs/a/p2.jpg"],
        "thumbs/b/p3-big.jpg": encode(pics[3].resize((w * 2, h * 2)), "JPEG", quality=95),
        "thumbs/b/p3-crop.png": encode(pics[3].crop((2, 2, w - 2, h - 2)), "PNG"),
    }
    for batch in (first, second):
        for rel, data in batch.items():
            write(root / rel, data)
        cli("scan", str(root))
    return root


def decisions(root: Path) -> dict[str, str | None]:
    return {d["id"]: d["decision"] for d in cli("dupes", str(root), "--near", "4", "--all")}


def ids_of(listed: list[dict[str, Any]]) -> list[str]:
    """The ids of a ``dupes --json`` listing, sorted."""
    return sorted(item["id"] for item in listed)


def test_every_key(tmp_path: Path, page: Any) -> None:
    root = small_library(tmp_path / "lib")
    listed = cli("dupes", str(root), "--near", "4")
    with serving(root, tmp_path / "serve.log") as (url, _):
        page.goto(url)
        heading, status = page.locator("#queue-heading"), page.locator("#status")
        expect(heading).to_have_attribute("data-count", str(len(listed)))
        items = page.locator("#queue [data-collision-id]")
        first = items.first
        assert "current" in (first.get_attribute("class") or "")
        for key, view in (("1", "side"), ("2", "flip"), ("3", "zoom"), ("4", "diff"), ("2", "flip")):
            page.keyboard.press(key)
            assert first.locator(".viewer").get_attribute("data-view") == view
        for key, at in (("j", 1), ("k", 0), ("ArrowDown", 1), ("ArrowUp", 0), ("ArrowRight", 1), ("ArrowLeft", 0)):
            page.keyboard.press(key)
            assert "current" in (items.nth(at).get_attribute("class") or ""), key
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#help")).to_be_hidden()

        # d, e, n on the first three items; u undoes each, newest first.
        ids = [items.nth(i).get_attribute("data-collision-id") for i in range(3)]
        for key, decision, ident in zip("den", ("distinct", "keep-existing", "keep-newcomer"), ids, strict=True):
            page.keyboard.press(key)
            expect(status).to_have_text(f"Decided {decision} on {ident}", timeout=30_000)
        expect(heading).to_have_attribute("data-count", str(len(listed) - 3), timeout=30_000)
        for decision, ident in zip(("keep-newcomer", "keep-existing", "distinct"), ids[::-1], strict=True):
            page.keyboard.press("u")
            expect(status).to_have_text(f"Undid {decision} on {ident}", timeout=30_000)
        expect(heading).to_have_attribute("data-count", str(len(listed)), timeout=30_000)
        assert all(v is None for v in decisions(root).values())

        # The near group: ] and [ choose the picture compared, p makes it the keeper, m merges
        # it, x says it is no duplicate; s keeps the suggested keeper of the next item. On a
        # page loaded once the library has settled after the undos (the live queue may still
        # be swapping a near group it saw changed for the one it is again).
        wait_for(
            lambda: ids_of(cli("dupes", str(root), "--near", "4")) == ids_of(listed),
            timeout=60,
            what="the undos to settle",
        )
        page.reload()
        expect(heading).to_have_attribute("data-count", str(len(listed)))
        # The group of three (p3, upscaled, cropped): ] and [ need two pictures to choose
        # between. (Other near pairs of these landscapes may come first: two members cycle to themselves.)
        near = page.locator('#queue [data-kind="near"]:visible').all()
        gid = next(g.get_attribute("data-collision-id") for g in near if g.locator(".member").count() >= 3)
        group = page.locator(f'[data-collision-id="{gid}"]')
        group.click(position={"x": 4, "y": 4})
        expect(group).to_have_class(re.compile(r"\bcurrent\b"))
        compared = group.locator(".member.selected")
        before = compared.get_attribute("data-member")
        page.keyboard.press("]")
        after = group.locator(".member.selected").get_attribute("data-member")
        assert after != before
        page.keyboard.press("[")
        assert group.locator(".member.selected").get_attribute("data-member") == before
        keeper = group.locator(".member.keeper").get_attribute("data-member")
        page.keyboard.press("p")
        assert group.locator(".member.keeper").get_attribute("data-member") == before
        page.keyboard.press("p")  # and back: the compared one is now the old keeper
        assert group.locator(".member.keeper").get_attribute("data-member") == keeper
        merged = group.locator(".member.selected").get_attribute("data-member")
        page.keyboard.press("m")
        pair = "+".join(sorted([keeper or "", merged or ""]))
        expect(status).to_contain_text(f"on {pair}", timeout=30_000)
        kept = decisions(root).get(pair)
        assert kept in ("keep-existing", "keep-newcomer")
        page.keyboard.press("u")
        expect(status).to_have_text(f"Undid {kept} on {pair}", timeout=30_000)
        expect(page.locator(f'#queue [data-collision-id="{gid}"]')).to_be_visible(timeout=30_000)
        group.click(position={"x": 4, "y": 4})
        page.keyboard.press("x")
        expect(status).to_contain_text("Decided distinct on", timeout=30_000)
        page.keyboard.press("u")
        expect(status).to_contain_text("Undid distinct", timeout=30_000)
        expect(page.locator(f'#queue [data-collision-id="{listed[-1]["id"]}"]')).to_be_visible(timeout=30_000)
        item = page.locator("#queue [data-collision-id]").first
        item.click(position={"x": 4, "y": 4})
        suggested = item.get_attribute("data-suggested")
        page.keyboard.press("s")
        expect(status).to_have_text(f"Decided {suggested} on {item.get_attribute('data-collision-id')}", timeout=30_000)
        page.keyboard.press("u")
        expect(status).to_contain_text("Undid", timeout=30_000)
        # a: the batch of every item shown, asked once (Escape cancels it).
        page.keyboard.press("a")
        expect(page.locator("#confirm-batch")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#confirm-batch")).to_be_hidden()
        assert all(v is None for v in decisions(root).values())


def test_a_batch_of_exact_duplicates_is_applied_once_and_undone_as_one(tmp_path: Path, page: Any) -> None:
    root = small_library(tmp_path / "lib")
    listed = cli("dupes", str(root), "--near", "4")
    exact = [d["id"] for d in listed if d["kind"] == "exact"]
    with serving(root, tmp_path / "serve.log") as (url, _):
        page.goto(url)
        status, heading = page.locator("#status"), page.locator("#queue-heading")
        page.select_option("#filter", "exact")
        button = page.locator('[data-action="apply-suggested"]')
        expect(button).to_contain_text(f"all {len(exact)} shown")
        button.click()
        expect(page.locator("#confirm-batch .summary")).to_contain_text(f"in {len(exact)} item")
        page.locator('[data-action="confirm-batch"]').click()
        expect(status).to_contain_text(f"Applied the suggested keeper: {len(exact)} decisions", timeout=30_000)
        expect(heading).to_have_attribute("data-count", str(len(listed) - len(exact)), timeout=30_000)
        after = decisions(root)
        assert [after[i] for i in exact] == ["keep-existing"] * len(exact)
        assert sum(v is not None for v in after.values()) == len(exact)  # only what was shown
        page.select_option("#filter", "all")
        page.keyboard.press("u")
        expect(status).to_contain_text("Undid batch", timeout=30_000)
        expect(status).to_contain_text(f"{len(exact)} decisions")
        expect(heading).to_have_attribute("data-count", str(len(listed)), timeout=30_000)
        assert all(v is None for v in decisions(root).values())


def test_a_collision_dropped_beside_a_running_daemon_appears_without_reload(tmp_path: Path, page: Any) -> None:
    root = tmp_path / "lib"
    im = landscape(SMALL, 7)
    write(root / "thumbs" / "a" / "x.jpg", camera_jpeg(im))
    cli("scan", str(root))
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    with running_daemon(root, conf), serving(root, tmp_path / "serve.log", "-c", str(conf)) as (url, _):
        page.goto(url)
        heading = page.locator("#queue-heading")
        expect(heading).to_have_attribute("data-count", "0")
        expect(page.locator("#empty")).to_be_visible()
        write(root / "thumbs" / "b" / "x.png", encode(im, "PNG"))  # the same picture: a collision
        (item,) = wait_for(lambda: cli("dupes", str(root)), timeout=60, what="the collision")
        expect(heading).to_have_attribute("data-count", "1", timeout=30_000)
        shown = page.locator(f'#queue [data-collision-id="{item["id"]}"]')
        expect(shown).to_be_visible(timeout=30_000)
        expect(page.locator("#empty")).to_be_hidden()
        assert "current" in (shown.get_attribute("class") or "")
        page.keyboard.press("e")
        expect(page.locator("#status")).to_have_text(f"Decided keep-existing on {item['id']}", timeout=30_000)
        expect(heading).to_have_attribute("data-count", "0", timeout=30_000)
        page.keyboard.press("u")
        expect(heading).to_have_attribute("data-count", "1", timeout=30_000)
    shutil.rmtree(root / ".watcherd" / "previews", ignore_errors=True)
