"""The review page's app with Starlette's TestClient: a real catalog made by ``watcherd scan``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import collided_library, drop, encode, scene, table
from watcherd.config import Config
from watcherd.web import app as app_module
from watcherd.web.app import create_app
from watcherd.web.security import is_loopback, same_origin


def cli(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "watcherd", *args, "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def collided(tmp_path: Path) -> Path:
    """A library with one collision (see ``tests.helpers.collided_library``)."""
    return collided_library(tmp_path / "lib")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return collided(tmp_path)


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


def test_tags_page_links_each_thumbnail_to_its_original(client: TestClient, root: Path) -> None:
    page = client.get("/tags?tag=cats")
    assert page.status_code == 200 and 'data-name="320x240_' in page.text
    (hit,) = cli("find", str(root), "--tag", "cats")
    (rec,) = [r for r in table(root / ".watcherd" / "catalog.sqlite", "images") if r["name"] == hit["name"]]
    assert f'<a href="/file/{rec["original"]}" class="original"><img src="/file/{hit["path"]}"' in page.text
    assert client.get(f"/file/{rec['original']}").content == (root / rec["original"]).read_bytes()


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
    monkeypatch.setattr(app_module, "GALLERY_PAGE", 1)
    page = client.get("/tags?tag=320x240&offset=1")
    assert f'data-name="{everything[1]["name"]}"' in page.text and everything[0]["name"] not in page.text
    assert "images 2\N{EN DASH}2 tagged 320x240" in page.text and "offset=2" in page.text


def diff_rows(html: str, side: str) -> dict[str, tuple[str, bool]]:
    """One side's diff rows on the review page: key -> (value, highlighted as differing)."""
    part = html.split(f'data-side="{side}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr( class="differs")?><td>([^<]*)</td><td>([^<]*)</td></tr>', part)
    return {key: (value, bool(differs)) for differs, key, value in rows}


def test_the_diff_shows_what_differs_and_the_keeper_is_the_one_dupes_suggests(client: TestClient, root: Path) -> None:
    page = client.get("/").text
    existing, newcomer = diff_rows(page, "existing"), diff_rows(page, "newcomer")
    assert list(existing) == ["pixels", "file size", "format", "date taken", "file name", "tags", "where"]
    assert existing["pixels"] == newcomer["pixels"] == ("320 x 240", False)
    assert existing["file name"] == ("a.png", True) and newcomer["file name"] == ("b.jpg", True)
    assert existing["format"] == ("PNG", True) and newcomer["format"] == ("JPEG", True)
    assert existing["tags"] == ("cats, 320x240", True)
    assert newcomer["tags"] == ("would get: dogs, 320x240", True)  # the folder it was dropped in
    assert existing["date taken"][0].endswith("(file date)")
    (item,) = cli("dupes", str(root))
    # cats/a.png is the larger file (PNG beside a JPEG of the same pixels): the suggested keeper.
    assert item["suggested"] == "existing"
    assert 'data-keeper="existing"' in page and 'class="side keeper" data-side="existing"' in page


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
