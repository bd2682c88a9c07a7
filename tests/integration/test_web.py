"""The review page's app with Starlette's TestClient: a real catalog made by ``watcherd scan``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import cli, collided_library, drop, encode, scene, table
from watcherd.core.config import Config
from watcherd.web import pages
from watcherd.web.app import create_app
from watcherd.web.security import is_loopback, same_origin


@pytest.fixture(scope="module")
def collided_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with one collision (see ``tests.helpers.collided_library``), made once."""
    return collided_library(tmp_path_factory.mktemp("template") / "lib")


@pytest.fixture
def root(tmp_path: Path, collided_template: Path) -> Path:
    """A copy of the collided library for each test (two scans cost 2 s; a copy, milliseconds).
    Folder identities differ from the template's, which a collision's drop folder survives:
    found by its remembered path when its identity is not in the tree."""
    return Path(shutil.copytree(collided_template, tmp_path / "lib", symlinks=True))


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Config().with_root(root)), base_url="http://127.0.0.1:8377") as c:
        yield c


def test_the_queue_shows_the_collision_with_its_buttons(client: TestClient, root: Path) -> None:
    (item,) = cli("dupes", str(root))
    page = client.get("/")
    assert page.status_code == 200
    assert f'data-collision-id="{item["id"]}"' in page.text
    for hook in ('data-decision="distinct"', 'data-decision="keep-existing"', 'data-decision="keep-newcomer"'):
        assert hook in page.text
    assert 'data-action="undo"' in page.text
    original = client.get(f"/file/{item['newcomer']['original']}")
    assert original.status_code == 200
    assert original.content == (root / item["newcomer"]["original"]).read_bytes()


def test_resolve_and_undo_through_the_api_answer_as_the_cli(client: TestClient, root: Path) -> None:
    listed = client.get("/api/dupes").json()
    assert listed == cli("dupes", str(root))
    # A number the API cannot read is the asker's mistake, said as such (not a server error).
    for bad in ("/api/dupes?near=x", "/api/dupes?near=²", "/api/similar?hash=00&distance=x"):
        answer = client.get(bad)
        assert answer.status_code == 400 and "non-negative integer" in answer.text, bad
    assert client.get("/api/dupes?near=").json() == listed  # given empty, as before: not near
    ident = listed[0]["id"]
    done = client.post("/api/resolve", json={"id": ident, "decision": "keep-existing"}).json()
    made = done.pop("made")
    assert done == {"id": ident, "decision": "keep-existing", "image": listed[0]["name"], "undone": False}
    assert made["id"] == ident and made["decision"] == "keep-existing" and made["via"] == "page" and made["token"]
    assert client.get("/api/dupes").json() == [] == cli("dupes", str(root))
    (decided,) = cli("dupes", str(root), "--all")
    assert decided["decision"] == "keep-existing"
    undone = client.post("/api/undo").json()
    assert undone == {"id": ident, "decision": None, "image": None, "undone": True, "undid": made}
    assert [d["id"] for d in cli("dupes", str(root))] == [ident]


def test_an_undo_naming_a_decision_no_longer_in_effect_is_a_409_and_changes_nothing(
    client: TestClient, root: Path
) -> None:
    (item,) = client.get("/api/dupes").json()
    made = client.post("/api/resolve", json={"id": item["id"], "decision": "keep-existing"}).json()["made"]
    (col,) = table(root / ".watcherd" / "catalog.sqlite", "collisions")
    assert col["decision"]["via"] == "page"
    assert cli("resolve", str(root), "--undo")["undid"] == made  # undone from the command line
    before = cli("dupes", str(root), "--all")

    refused = client.post("/api/undo", json={"id": item["id"], "token": made["token"]})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": f"there is no decision on {item['id']} to undo (undone elsewhere, or never made); nothing was changed",
        "last": None,
        "named": {"id": item["id"], "in_effect": False},
    }
    assert cli("dupes", str(root), "--all") == before
    for body in (b"[1]", b"not json", b'{"id": 3}'):
        assert client.post("/api/undo", content=body).status_code == 400
    assert cli("dupes", str(root), "--all") == before


def test_the_heading_counts_the_undecided(client: TestClient) -> None:
    page = client.get("/").text
    assert '<h1 id="queue-heading" data-count="1">Review (<span class="count">1</span> undecided)</h1>' in page
    assert 'role="status"' in page and 'aria-live="polite"' in page


def test_a_bad_decision_is_a_400_with_the_cli_s_message(client: TestClient) -> None:
    (item,) = client.get("/api/dupes").json()
    answer = client.post("/api/resolve", json={"id": item["id"], "decision": "maybe"})
    assert answer.status_code == 400 and answer.json()["error"]
    assert client.post("/api/resolve", content=b"not json").status_code == 400


def test_similar_by_hash_and_by_upload(client: TestClient, root: Path) -> None:
    (item,) = client.get("/api/dupes").json()
    hash_hex = item["name"].split("_")[1]
    hits = client.get(f"/api/similar?hash={hash_hex}&distance=0").json()
    assert hits == cli("similar", str(root), hash_hex, "--distance", "0")
    assert [h["name"] for h in hits] == [item["name"]]
    upload = {"image": ("query.jpg", encode(scene(seed=41), "JPEG", quality=80), "image/jpeg")}
    assert [h["name"] for h in client.post("/api/similar?distance=4", files=upload).json()] == [item["name"]]
    page = client.post("/search", files=upload)
    assert f'data-name="{item["name"]}"' in page.text


def test_an_upload_that_is_not_an_image_is_refused(client: TestClient) -> None:
    answer = client.post("/api/similar", files={"image": ("x.jpg", b"not an image", "image/jpeg")})
    assert answer.status_code == 400


def test_uploads_are_size_limited(root: Path) -> None:
    with TestClient(create_app(Config().with_root(root), upload_limit=1000)) as c:
        big = {"image": ("big.jpg", b"\0" * 5000, "image/jpeg")}
        assert c.post("/api/similar", files=big).status_code == 413


def test_tags_page_links_each_picture_to_its_original(client: TestClient, root: Path) -> None:
    page = client.get("/tags?tag=cats")
    assert page.status_code == 200 and 'data-name="320x240_' in page.text
    (hit,) = cli("find", str(root), "--tag", "cats")
    (rec,) = [r for r in table(root / ".watcherd" / "catalog.sqlite", "images") if r["name"] == hit["name"]]
    assert f'<a class="pic" href="/file/{rec["original"]}"' in page.text
    assert client.get(f"/file/{rec['original']}").content == (root / rec["original"]).read_bytes()
    # Folder tags are checkboxes; size tags are a filter of their own.
    assert 'name="tag" value="cats"' in page.text and 'name="tag" value="320x240"' not in page.text
    assert '<option value="320x240">320x240 (1)</option>' in page.text
    assert 'data-name="320x240_' in client.get("/tags?size=320x240").text


def test_find_is_paged_over_the_api_and_on_the_tags_page(
    client: TestClient, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop(root / "thumbs" / "birds" / "b.jpg", seed=7)
    cli("scan", str(root))
    everything = cli("find", str(root), "--tag", "320x240")
    assert len(everything) == 2
    assert client.get("/api/find?tag=320x240").json() == everything
    assert client.get("/api/find?tag=320x240&limit=1&offset=1").json() == everything[1:2]
    assert client.get("/api/find?tag=320x240&limit=x").status_code == 400
    # Digits int() refuses (str.isdigit takes them): a clear 400, the page's first page.
    assert client.get("/api/find?tag=320x240&offset=²").status_code == 400
    monkeypatch.setattr(pages, "PER_PAGE", 1)
    page = client.get("/tags?size=320x240&page=2")
    assert f'data-name="{everything[1]["name"]}"' in page.text and everything[0]["name"] not in page.text
    assert "2 pictures tagged 320x240" in page.text and "page 2 of 2" in page.text
    assert "page 1 of 2" in client.get("/tags?size=320x240&page=²").text


def fact_rows(html: str) -> dict[str, tuple[list[str], bool]]:
    """The review page's facts: key -> (each side's value, highlighted as differing)."""
    part = html.split('<table class="facts">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr( class="differs")? data-row="([^"]*)"><th scope="row">[^<]*</th>(.*?)</tr>', part, re.S)
    return {key: (re.findall(r"<td[^>]*>([^<]*)</td>", cells), bool(differs)) for differs, key, cells in rows}


def test_the_facts_show_what_differs_and_the_keeper_is_the_one_dupes_suggests(client: TestClient, root: Path) -> None:
    page = client.get("/").text
    rows = fact_rows(page)
    assert list(rows) == ["pixels", "file size", "format", "date taken", "camera", "file name", "tags", "where"]
    assert rows["pixels"] == (["320 x 240", "320 x 240"], False)
    assert rows["file name"] == (["a.png", "b.jpg"], True)
    assert rows["format"] == (["PNG", "JPEG"], True)
    assert rows["tags"] == (["cats, 320x240", "would get: dogs, 320x240"], True)  # the folder it was dropped in
    assert rows["date taken"][0][0].endswith("(file date)")
    assert 'data-taken-source="file"' in page
    (item,) = cli("dupes", str(root))
    # cats/a.png is the larger file (PNG beside a JPEG of the same pixels): the suggested keeper.
    assert item["suggested"] == "existing" and item["reasons"][0].startswith("existing: larger file at equal pixels")
    assert 'data-keeper="existing"' in page and 'class="pane keeper front" data-side="existing"' in page
    assert 'data-reasons="larger file at equal pixels' in page
    assert 'data-distance="0"' in page
    for mode in ("side", "flip", "zoom", "diff"):
        assert f'data-mode="{mode}"' in page
    assert 'data-action="apply-suggested"' in page


def test_previews_and_differences_are_rendered_in_the_sandbox_and_cached(client: TestClient, root: Path) -> None:
    (item,) = cli("dupes", str(root))
    a, b = item["existing"]["original"], item["newcomer"]["original"]
    first = client.get(f"/preview/{a}")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content[:2] == b"\xff\xd8"
    cached = list((root / ".watcherd" / "previews").glob("*-full.jpg"))
    assert len(cached) == 1
    assert client.get(f"/preview/{a}").content == first.content
    said = client.get(f"/api/diff?a={a}&b={b}").json()
    assert said["size"] == [320, 240] and 0 <= said["changed"] < 0.05 and said["image"].startswith("/diff?")
    assert client.get(said["image"]).content[:2] == b"\xff\xd8"
    assert client.get("/preview/../x").status_code == 404
    assert client.get("/preview/.watcherd/catalog.sqlite").status_code == 404
    assert client.get("/api/diff?a=../x&b=y").status_code == 404


def test_a_file_moved_away_just_after_the_page_found_it_is_404_not_a_server_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watcherd.web import app as web

    (item,) = cli("dupes", str(root))
    a, b = item["existing"]["original"], item["newcomer"]["original"]
    found = web.inside_root

    def then_moved(base: Path, rel: str) -> Path:
        target = found(base, rel)
        target.rename(target.with_name(f"moved-{target.name}"))  # dragged away in the file manager just now
        return target

    monkeypatch.setattr(web, "inside_root", then_moved)
    with TestClient(web.create_app(Config().with_root(root)), base_url="http://127.0.0.1:8377") as client:
        for asked in (f"/file/{a}", f"/preview/{a}", f"/preview/{b}?sha={'0' * 64}", f"/api/diff?a={a}&b={b}"):
            assert client.get(asked).status_code == 404, asked  # raise_server_exceptions: a 500 fails here too
            for rel in (a, b):  # put back for the next question
                moved = (root / rel).with_name(f"moved-{Path(rel).name}")
                if moved.exists():
                    moved.rename(root / rel)


def test_a_batch_through_the_api_is_undone_as_one(client: TestClient, root: Path) -> None:
    (item,) = client.get("/api/dupes").json()
    done = client.post("/api/resolve", json={"decisions": [{"id": item["id"], "decision": "keep-existing"}]}).json()
    assert [m["id"] for m in done["made"]] == [item["id"]] and done["refused"] == []
    assert done["made"][0]["made"]["batch"] == done["batch"]
    assert client.get("/api/dupes").json() == []
    undone = client.post("/api/undo", json={"batch": done["batch"]}).json()
    assert [u["id"] for u in undone["undid"]] == [item["id"]] and undone["left"] == []
    assert [d["id"] for d in client.get("/api/dupes").json()] == [item["id"]]
    again = client.post("/api/undo", json={"batch": done["batch"]})
    assert again.status_code == 409


def test_new_items_are_served_as_html_for_the_live_queue(client: TestClient) -> None:
    (item,) = client.get("/api/dupes").json()
    version = client.get("/api/version").json()["version"]
    assert version != "none"
    fragment = client.get(f"/queue/items?id={item['id']}").text
    assert f'data-collision-id="{item["id"]}"' in fragment and "<html" not in fragment


@pytest.mark.parametrize(
    "path", ["/file/../x", "/file/%2e%2e/%2e%2e/etc/passwd", "/file//etc/passwd", "/file/.watcherd/catalog.sqlite"]
)
def test_files_are_served_only_from_inside_the_root(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_a_symlink_out_of_the_root_is_not_followed(client: TestClient, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    os.symlink(secret, root / "thumbs" / "leak.png")
    assert client.get("/file/thumbs/leak.png").status_code == 404


def test_a_cross_origin_change_is_refused(client: TestClient) -> None:
    assert client.post("/api/undo", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/undo", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    (item,) = client.get("/api/dupes").json()
    evil = client.post("/api/resolve", json={"id": item["id"], "decision": "distinct"}, headers={"Origin": "null"})
    assert evil.status_code == 403
    assert client.get("/api/dupes").json() == [item]


def test_changes_are_made_by_post_only(client: TestClient) -> None:
    assert client.get("/api/undo").status_code == 405
    assert client.put("/api/resolve", json={}).status_code == 405


def test_with_a_token_nothing_is_served_without_it(root: Path) -> None:
    token = "t" * 24
    with TestClient(create_app(Config().with_root(root), token), base_url="http://192.0.2.1:8377") as c:
        assert c.get("/").status_code == 401
        assert c.get("/api/dupes").status_code == 401
        assert c.post("/api/undo").status_code == 401
        assert c.get("/api/dupes?token=wrong").status_code == 401
        assert c.get("/api/dupes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        first = c.get(f"/?token={token}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert c.get("/").status_code == 200  # the cookie now


def test_which_binds_need_a_token_and_which_origins_may_change() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert same_origin({"host": "127.0.0.1:8377", "origin": "http://127.0.0.1:8377"})
    assert same_origin({"host": "127.0.0.1:8377"})
    assert not same_origin({"host": "127.0.0.1:8377", "origin": "http://127.0.0.1:9999"})
    assert not same_origin({"host": "127.0.0.1:8377", "sec-fetch-site": "same-site"})
