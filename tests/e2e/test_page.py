"""The review page as a user meets it: ``watcherd serve`` as a process, driven by headless Chromium.

Playwright cannot download its own browser here; Debian's ``chromium`` (installed by
``.ci/run`` when missing) is launched by path. One library, one server and one browser
serve the whole module; the tests that decide leave every collision as they found it
(undecided) or say what they changed.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM
from tests.helpers import cli, digest, encode, near_library, scene, wait_for, write
from tests.invariants import check_library

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

SEEDS = (41, 42, 43)  # one collision each: cats/a{seed}.png first, dogs/b{seed}.jpg second
TOM = ("thumbs/cats/orange/tom.jpg", 60)  # the one image tagged orange (and cats), for /tags and /search


def review_library(root: Path) -> dict[str, bytes]:
    """Three collisions and a two-tag image, made by two ``watcherd scan`` runs; the bytes dropped, by name."""
    dropped: dict[str, bytes] = {}
    for batch in (
        [(f"thumbs/cats/a{s}.png", encode(scene(seed=s), "PNG")) for s in SEEDS]
        + [(TOM[0], encode(scene(seed=TOM[1]), "JPEG"))],
        [(f"thumbs/dogs/b{s}.jpg", encode(scene(seed=s), "JPEG", quality=95)) for s in SEEDS],
    ):
        for rel, data in batch:
            write(root / rel, data)
            dropped[Path(rel).name] = data
        cli("scan", str(root))
    return dropped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url + "api/dupes")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def serving(root: Path, log: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """``watcherd serve ROOT`` as a process; yields (the URL it printed, its port)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcherd", "serve", str(root), "--port", str(port), *extra],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "http://" in log.read_text(), timeout=30, what="the URL")
        text = log.read_text()
        printed = text[text.index("http://") :].split()[0]
        base = f"http://127.0.0.1:{port}/"
        token = printed.split("?token=")[1] if "?token=" in printed else None
        wait_for(lambda: _answers(base, token), timeout=30, what="the server to answer")
        yield printed, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("page") / "lib"
    return root, review_library(root)


@pytest.fixture(scope="module")
def server(library: tuple[Path, dict[str, bytes]]) -> Iterator[tuple[str, int]]:
    root, _ = library
    with serving(root, root.parent / "serve.log") as served:
        yield served


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


# --- what a decision leaves behind ---------------------------------------------------


def check_settled(root: Path, dropped: dict[str, bytes], item: dict[str, Any], decision: str | None) -> None:
    """The files on disk and the catalog (``dupes --all``) as ``decision`` leaves them (None: undone)."""
    stem, seed = item["name"][: -len(".png")], item["newcomer"]["filename"][1:3]
    newcomer, existing = dropped[f"b{seed}.jpg"], dropped[f"a{seed}.png"]
    variant = f"{stem}~{digest(newcomer)[:12]}"
    (listed,) = [d for d in cli("dupes", str(root), "--all") if d["id"] == item["id"]]
    assert listed["decision"] == decision
    assert all((root / p).is_file() for p in listed["paths"]), listed["paths"]
    if decision is None:
        assert (root / item["newcomer"]["thumbnail"]).is_file()
        assert (root / item["newcomer"]["original"]).read_bytes() == newcomer
        assert (root / item["existing"]["original"]).read_bytes() == existing
        assert item["id"] in [d["id"] for d in cli("dupes", str(root))]
    else:
        assert not (root / item["newcomer"]["thumbnail"]).exists()
        assert item["id"] not in [d["id"] for d in cli("dupes", str(root))]
    if decision == "distinct":
        assert (root / "thumbs" / "dogs" / f"{variant}.png").is_file()
        assert (root / "originals" / f"{variant}.jpg").read_bytes() == newcomer
        assert cli("tags", str(root), f"{variant}.png")["tags"] == ["dogs", "320x240"]
    elif decision == "keep-existing":
        assert (root / "originals" / "_duplicates" / f"{item['id']}.jpg").read_bytes() == newcomer
        assert "dogs" in cli("tags", str(root), item["name"])["tags"]
    elif decision == "keep-newcomer":
        assert (root / "originals" / f"{stem}.jpg").read_bytes() == newcomer
        assert (root / "originals" / "_duplicates" / f"{stem}~{digest(existing)[:12]}.png").read_bytes() == existing
        assert "dogs" in cli("tags", str(root), item["name"])["tags"]
    assert check_library(root, dropped) == []


def is_current(item: Any) -> bool:
    return "current" in (item.get_attribute("class") or "").split()


def x_of(locator: Any) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["x"])


# --- the review queue -------------------------------------------------------------------


def test_a_review_by_buttons_and_keys_settles_files_and_catalog_and_survives_rebuild(
    library: tuple[Path, dict[str, bytes]], server: tuple[str, int], page: Any
) -> None:
    root, dropped = library
    url, _ = server
    queue = cli("dupes", str(root))
    assert [q["suggested"] for q in queue] == ["existing"] * 3  # the PNGs are the larger files
    page.goto(url)
    items = page.locator("[data-collision-id]")
    assert [items.nth(i).get_attribute("data-collision-id") for i in range(3)] == [q["id"] for q in queue]
    # by id: a decided item leaves the queue for the page's "decided" list, so positions change
    first, second, third = (page.locator(f'[data-collision-id="{q["id"]}"]') for q in queue)
    assert is_current(first) and first.get_attribute("data-keeper") == "existing"

    # f flips A/B in place (the newcomer shown where the existing picture was, at its size), f again back.
    old, new = first.locator('[data-side="existing"] img'), first.locator('[data-side="newcomer"] img')
    assert old.is_visible() and not new.is_visible() and old.bounding_box() == new.bounding_box()
    page.keyboard.press("f")
    assert new.is_visible() and not old.is_visible()
    page.keyboard.press("f")
    assert old.is_visible() and not new.is_visible()
    page.keyboard.press("1")  # side by side: existing left, newcomer right
    assert x_of(old) < x_of(new)

    # Arrows move on and back.
    page.keyboard.press("ArrowDown")
    assert is_current(second) and not is_current(first)
    page.keyboard.press("ArrowUp")
    assert is_current(first)

    # A button: distinct. The next undecided item becomes current.
    first.locator('[data-decision="distinct"]').click()
    page.wait_for_selector(f'[data-collision-id="{queue[0]["id"]}"][data-decision="distinct"]')
    check_settled(root, dropped, queue[0], "distinct")
    assert is_current(second)

    # Keys: e keeps the existing picture, n the newcomer.
    page.keyboard.press("e")
    page.wait_for_selector(f'[data-collision-id="{queue[1]["id"]}"][data-decision="keep-existing"]')
    check_settled(root, dropped, queue[1], "keep-existing")
    assert is_current(third)
    page.keyboard.press("n")
    page.wait_for_selector(f'[data-collision-id="{queue[2]["id"]}"][data-decision="keep-newcomer"]')
    check_settled(root, dropped, queue[2], "keep-newcomer")

    # rebuild keeps every decision.
    decided = {d["id"]: d["decision"] for d in cli("dupes", str(root), "--all")}
    cli("rebuild", str(root))
    assert {d["id"]: d["decision"] for d in cli("dupes", str(root), "--all")} == decided
    for item, decision in zip(queue, ("distinct", "keep-existing", "keep-newcomer"), strict=True):
        check_settled(root, dropped, item, decision)

    # u undoes the last decision, the undo button the one before; both survive a rebuild.
    page.keyboard.press("u")
    page.wait_for_selector(f'[data-collision-id="{queue[2]["id"]}"]:not([data-decision])')
    check_settled(root, dropped, queue[2], None)
    page.locator('[data-action="undo"]').first.click()
    page.wait_for_selector(f'[data-collision-id="{queue[1]["id"]}"]:not([data-decision])')
    check_settled(root, dropped, queue[1], None)
    cli("rebuild", str(root))
    check_settled(root, dropped, queue[0], "distinct")
    check_settled(root, dropped, queue[1], None)
    check_settled(root, dropped, queue[2], None)

    # A fresh page shows what is left to decide, with the d key on the current item.
    page.goto(url)
    left = page.locator('[data-collision-id]:not([data-kind="near"])')
    shown = [left.nth(i).get_attribute("data-collision-id") for i in range(left.count())]
    assert shown == [d["id"] for d in cli("dupes", str(root))] and set(shown) == {q["id"] for q in queue[1:]}
    assert is_current(left.first)
    (item,) = [q for q in queue if q["id"] == shown[0]]
    page.keyboard.press("d")
    page.wait_for_selector(f'[data-collision-id="{item["id"]}"][data-decision="distinct"]')
    check_settled(root, dropped, item, "distinct")
    page.keyboard.press("u")
    page.wait_for_selector(f'[data-collision-id="{item["id"]}"]:not([data-decision])')
    check_settled(root, dropped, item, None)


# --- undo's scope: the page undoes only its own decisions ---------------------------------------


def test_the_page_undoes_only_its_own_decision_says_what_it_undid_and_counts_the_queue(
    tmp_path: Path, page: Any
) -> None:
    root = tmp_path / "lib"
    dropped = review_library(root)
    q0, q1, q2 = (d["id"] for d in cli("dupes", str(root)))
    queue = {d["id"]: d for d in cli("dupes", str(root))}
    total = len(cli("dupes", str(root), "--near", "4"))  # what the page lists: collisions and near groups
    expect = playwright.expect
    status, heading = page.locator("#status"), page.locator("#queue-heading")

    def decisions() -> dict[str, str | None]:
        return {d["id"]: d["decision"] for d in cli("dupes", str(root), "--all")}

    def counted(n: int) -> None:
        expect(heading).to_have_attribute("data-count", str(n), timeout=30_000)
        expect(heading).to_have_text(f"Review ({n} undecided)")

    def said(text: str) -> None:
        expect(status).to_have_text(text, timeout=30_000)

    with serving(root, tmp_path / "serve.log") as (url, _):
        page.goto(url)
        counted(total)
        assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
        # A decision from the command line, then one on the page.
        cli("resolve", str(root), q0, "keep-existing")
        page.locator(f'[data-collision-id="{q1}"] [data-decision="keep-existing"]').click()
        said(f"Decided keep-existing on {q1}")
        counted(total - 2)  # the page's decision and the command line's, seen by asking the server
        expect(page.locator(f'[data-collision-id="{q0}"]')).to_be_hidden()  # decided elsewhere: out of the queue
        expect(page.locator(f'#decided-here [data-collision-id="{q1}"][data-decision="keep-existing"]')).to_be_visible()
        assert decisions() == {q0: "keep-existing", q1: "keep-existing", q2: None}

        # u undoes the page's decision only, and names it; the item is back in the queue.
        page.keyboard.press("u")
        said(f"Undid keep-existing on {q1}")
        counted(total - 1)
        expect(page.locator(f'#queue [data-collision-id="{q1}"]:not([data-decision])')).to_be_visible()
        assert decisions() == {q0: "keep-existing", q1: None, q2: None}
        check_settled(root, dropped, queue[q0], "keep-existing")
        check_settled(root, dropped, queue[q1], None)

        # A second u: the page has nothing of its own left; the command line's decision stays.
        page.keyboard.press("u")
        said(
            "Nothing undone: no decision made on this page is left to undo "
            "(a decision made elsewhere is undone with 'watcherd resolve --undo')."
        )
        assert "refused" in (status.get_attribute("class") or "")
        assert decisions() == {q0: "keep-existing", q1: None, q2: None}
        counted(total - 1)

        # The page decides again, then the command line: u is refused with the server's message.
        page.locator(f'[data-collision-id="{q1}"] [data-decision="distinct"]').click()
        said(f"Decided distinct on {q1}")
        made = cli("resolve", str(root), q2, "keep-newcomer")["made"]
        page.keyboard.press("u")
        said(
            f"Not undone: the last decision is keep-newcomer on {q2} (made from the command line at "
            f"{made['decided']}), not the one on {q1}: only the last decision can be undone; undo it first with "
            "'watcherd resolve --undo'; nothing was changed"
        )
        counted(total - 3)
        assert decisions() == {q0: "keep-existing", q1: "distinct", q2: "keep-newcomer"}
        check_settled(root, dropped, queue[q1], "distinct")

        # Once the command line's is undone (and named), the page's u undoes its own.
        assert cli("resolve", str(root), "--undo")["undid"] == made
        page.keyboard.press("u")
        said(f"Undid distinct on {q1}")
        counted(total - 1)
        assert decisions() == {q0: "keep-existing", q1: None, q2: None}

        # The page's last decision undone elsewhere: u says so, changes nothing, and forgets it.
        page.locator(f'[data-collision-id="{q1}"] [data-decision="keep-newcomer"]').click()
        said(f"Decided keep-newcomer on {q1}")
        assert cli("resolve", str(root), "--undo")["undid"]["id"] == q1
        # The live queue sees it undone first (it lists q1 again); u still asks the server what became of it.
        expect(page.locator(f'#queue [data-collision-id="{q1}"]:not([data-decision])')).to_be_visible(timeout=30_000)
        page.keyboard.press("u")
        said(f"Not undone: there is no decision on {q1} to undo (undone elsewhere, or never made); nothing was changed")
        counted(total - 1)
        expect(page.locator(f'#queue [data-collision-id="{q1}"]:not([data-decision])')).to_be_visible()
        assert decisions() == {q0: "keep-existing", q1: None, q2: None}
        page.keyboard.press("u")
        said(
            "Nothing undone: no decision made on this page is left to undo "
            "(a decision made elsewhere is undone with 'watcherd resolve --undo')."
        )
        assert decisions() == {q0: "keep-existing", q1: None, q2: None}
        check_settled(root, dropped, queue[q0], "keep-existing")
        check_settled(root, dropped, queue[q1], None)
        check_settled(root, dropped, queue[q2], None)


# --- search and tags -------------------------------------------------------------------------


def test_search_by_upload_and_by_pasted_hash(
    library: tuple[Path, dict[str, bytes]], server: tuple[str, int], page: Any, tmp_path: Path
) -> None:
    root, dropped = library
    url, _ = server
    (tom,) = cli("find", str(root), "--tag", "orange")
    picture = write(tmp_path / "query.jpg", dropped["tom.jpg"])

    page.goto(url + "search")
    page.set_input_files('input[type="file"]', str(picture))
    page.locator('form[enctype="multipart/form-data"] button').click()
    hit = page.locator(f'.result[data-name="{tom["name"]}"]')
    hit.wait_for()
    assert hit.get_attribute("data-distance") == "0"
    found = {r.get_attribute("data-name"): int(r.get_attribute("data-distance")) for r in page.locator(".result").all()}
    assert found == {h["name"]: h["distance"] for h in cli("similar", str(root), str(picture))}

    hash_hex = tom["name"].split("_")[1]
    page.goto(url + "search")
    page.fill('input[name="hash"]', hash_hex)
    page.locator('input[name="hash"]').press("Enter")
    page.locator(f'.result[data-name="{tom["name"]}"][data-distance="0"]').wait_for()
    assert f"hash={hash_hex}" in page.url


def test_tags_by_one_and_by_two_tags_link_to_originals(
    library: tuple[Path, dict[str, bytes]], server: tuple[str, int], page: Any
) -> None:
    root, dropped = library
    url, _ = server
    page.goto(url + "tags")
    page.check('input[name="tag"][value="cats"]')
    page.locator('form[action="/tags"] button').click()
    page.wait_for_url("**/tags?tag=cats")
    cats = {h["name"] for h in cli("find", str(root), "--tag", "cats")}
    assert {f.get_attribute("data-name") for f in page.locator("figure[data-name]").all()} == cats
    assert len(cats) == 4

    page.check('input[name="tag"][value="orange"]')
    page.locator('form[action="/tags"] button').click()
    page.wait_for_url("**/tags?tag=cats&tag=orange")
    (only,) = page.locator("figure[data-name]").all()
    (tom,) = cli("find", str(root), "--tag", "orange")
    assert only.get_attribute("data-name") == tom["name"]
    with page.expect_response(lambda r: "/file/originals/" in r.url) as opened:
        only.locator("a").click()
    assert opened.value.status == 200 and opened.value.body() == dropped["tom.jpg"]


# --- safe by default --------------------------------------------------------------------------


def raw_get(port: int, path: str) -> int:
    """The status of a GET sent exactly as written (no client-side path clean-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_bound_to_loopback_files_stay_inside_the_root(
    library: tuple[Path, dict[str, bytes]], server: tuple[str, int], page: Any, tmp_path: Path
) -> None:
    root, _ = library
    url, port = server
    assert url == f"http://127.0.0.1:{port}/"  # no token needed on loopback
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", port), timeout=5):
        pass  # bound to 127.0.0.1 only, not to every address

    for path in ("/file/../serve.log", "/file/%2e%2e/%2e%2e/etc/passwd", "/file//etc/passwd", "/file/.watcherd/lock"):
        assert raw_get(port, path) == 404, path
    assert page.goto(url + "file/%2e%2e/%2e%2e/%2e%2e/etc/passwd").status == 404
    secret = write(tmp_path / "secret.png", b"private")
    link = root / "outside.png"
    os.symlink(secret, link)
    try:
        assert raw_get(port, "/file/outside.png") == 404
        assert page.goto(url + "file/outside.png").status == 404
    finally:
        link.unlink()
    (item, *_) = cli("dupes", str(root))
    assert page.goto(url + "file/" + item["newcomer"]["original"]).status == 200


def refused_with(request: urllib.request.Request | str) -> int:
    """The status a request is refused with; the refusal's response is closed, so its socket
    is not left for the garbage collector to warn about in some later test's teardown."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    return refused.value.code


def test_cross_origin_changes_and_oversize_uploads_are_refused(
    library: tuple[Path, dict[str, bytes]], server: tuple[str, int], page: Any, tmp_path: Path
) -> None:
    root, _ = library
    url, port = server
    before = cli("dupes", str(root), "--all")
    undecided = cli("dupes", str(root))[0]["id"]
    # A page elsewhere posts a form to the review page (a classic cross-site request).
    evil = (
        f'<form method="post" action="{url}api/undo" id="f"></form>'
        f'<form method="post" action="{url}api/resolve" id="g" enctype="text/plain">'
        f'<input name=\'{{"id": "{undecided}", "decision": "distinct", "x": "\' value=\'"}}\'></form>'
    )
    page.route("http://evil.example/", lambda route: route.fulfill(body=evil, content_type="text/html"))
    for form in ("f", "g"):
        page.goto("http://evil.example/")
        with page.expect_navigation() as answer:  # to the review page's answer, loaded before the next
            page.eval_on_selector(f"#{form}", "f => f.submit()")
        assert answer.value is not None and answer.value.url.startswith(url + "api/")
        assert answer.value.status == 403
    request = urllib.request.Request(url + "api/undo", method="POST", headers={"Origin": "http://evil.example"})
    assert refused_with(request) == 403
    assert cli("dupes", str(root), "--all") == before

    # Over 32 MiB: refused by the browser's form post and over HTTP.
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * (33 << 20))
    page.goto(url + "search")
    page.set_input_files('input[type="file"]', str(big))
    with page.expect_navigation() as answer:
        page.locator('form[enctype="multipart/form-data"] button').click()
    assert answer.value is not None and answer.value.url == url + "search"
    assert answer.value.status == 413
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/api/similar")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(33 << 20))
        conn.endheaders()
        assert conn.getresponse().status == 413  # refused from the declared length, before the body
    finally:
        conn.close()


def test_bound_to_another_address_a_token_is_needed(
    library: tuple[Path, dict[str, bytes]], browser: Any, tmp_path: Path
) -> None:
    root, _ = library
    with serving(root, tmp_path / "serve.log", "--host", "0.0.0.0") as (printed, port):
        assert "?token=" in printed  # generated and printed
        token = printed.split("?token=")[1]
        base = f"http://127.0.0.1:{port}/"
        assert refused_with(base + "api/dupes") == 401
        bearer = urllib.request.Request(base + "api/dupes", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(bearer, timeout=30) as answer:
            assert json.loads(answer.read()) == cli("dupes", str(root))
        wrong = urllib.request.Request(base + "api/dupes", headers={"Authorization": "Bearer " + "x" * len(token)})
        assert refused_with(wrong) == 401

        context = browser.new_context()
        try:
            page = context.new_page()
            assert page.goto(base).status == 401
            shown = page.goto(f"{base}?token={token}")  # once in the URL, then a cookie
            assert shown.status == 200 and page.url == base and "token" not in page.url
            assert page.goto(base + "api/dupes").status == 200
            assert page.goto(base + "tags").status == 200
        finally:
            context.close()
        fresh = browser.new_context()
        try:
            assert fresh.new_page().goto(base + "tags").status == 401
        finally:
            fresh.close()


@pytest.mark.timeout(180)
def test_a_near_group_is_kept_by_its_button_and_undone(tmp_path: Path, page: Any) -> None:
    root = near_library(tmp_path / "lib")
    (group,) = cli("dupes", str(root), "--near", "4")
    with serving(root, tmp_path / "serve.log") as (url, _):
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
