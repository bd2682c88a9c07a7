"""Near groups decided keep-existing / keep-newcomer by command (no daemon: the command takes the
lease), kept by ``rebuild``, applied again to the same bytes, and undone in the decoder sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import encode, scene, table, write
from tests.helpers import in_process_json as run
from tests.invariants import check_library
from watcherd.core.config import Config
from watcherd.decode import imaging


@pytest.mark.parametrize("decision", ["keep-existing", "keep-newcomer"])
def test_a_near_keep_survives_rebuild_settles_the_same_bytes_and_is_undone(
    cfg: Config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    root = str(cfg.root)
    im = scene(seed=33)
    dropped = {"a.png": encode(im, "PNG"), "b.png": encode(im.resize((318, 240)), "PNG")}
    write(cfg.thumbs_dir / "cats" / "a.png", dropped["a.png"])
    run(capsys, "scan", root)
    write(cfg.thumbs_dir / "dogs" / "b.png", dropped["b.png"])
    run(capsys, "scan", root)
    (group,) = run(capsys, "dupes", root, "--near", "8")
    before = {r["name"]: r for r in table(cfg.database_path, "images")}
    kept = group["existing"] if decision == "keep-existing" else group["newcomer"]
    (gone,) = set(group["names"]) - {kept}

    done = run(capsys, "resolve", root, group["id"], decision)
    made = done.pop("made")
    assert done == {"id": group["id"], "decision": decision, "image": kept, "undone": False}
    assert (made["id"], made["decision"], made["via"]) == (group["id"], decision, "command")
    assert run(capsys, "dupes", root, "--near", "8") == []
    (listed,) = run(capsys, "dupes", root, "--near", "8", "--all")
    assert listed["id"] == group["id"] and listed["decision"] == decision and listed["decided"]
    assert not (Path(root) / before[gone]["path"]).exists()
    assert check_library(Path(root), dropped) == []
    images = {r["name"]: r for r in table(cfg.database_path, "images")}
    assert list(images) == [kept] and {"cats", "dogs"} <= set(images[kept]["tags"])

    run(capsys, "rebuild", root)
    assert run(capsys, "dupes", root, "--near", "8") == []
    (again,) = run(capsys, "dupes", root, "--near", "8", "--all")
    assert again["decision"] == decision and again["decided"] == listed["decided"]
    rebuilt = {r["name"]: r for r in table(cfg.database_path, "images")}
    assert {n: sorted(r["tags"]) for n, r in rebuilt.items()} == {n: sorted(r["tags"]) for n, r in images.items()}
    assert rebuilt[kept].get("other_filenames") == images[kept].get("other_filenames")

    # the merged image's bytes dropped again: settled as before, not a new image
    gone_bytes = dropped["b.png"] if before[gone]["original_filename"] == "b.png" else dropped["a.png"]
    write(cfg.thumbs_dir / "birds" / "c.png", gone_bytes)
    run(capsys, "scan", root)
    assert not (cfg.thumbs_dir / "birds" / "c.png").exists()
    assert [r["name"] for r in table(cfg.database_path, "images")] == [kept]
    assert "birds" in table(cfg.database_path, "images")[0]["tags"]
    assert check_library(Path(root), {**dropped, "c.png": gone_bytes}) == []

    def in_the_writer(*args: object) -> object:
        raise AssertionError("an original was decoded in the writer process")

    # undo makes the merged thumbnail again in the sandbox (a fresh interpreter: the patch does not reach it)
    monkeypatch.setattr(imaging, "decode", in_the_writer)
    assert run(capsys, "resolve", root, "--undo") == {
        "id": group["id"],
        "decision": None,
        "image": None,
        "undone": True,
        "undid": made,  # named as it was made (rebuild kept its token)
    }
    (back,) = run(capsys, "dupes", root, "--near", "8")
    assert back["id"] == group["id"]
    restored = {r["name"]: r for r in table(cfg.database_path, "images")}
    assert restored[gone] == before[gone]  # the merged record exactly as it was
    assert (Path(root) / before[gone]["path"]).is_file() and (Path(root) / before[gone]["original"]).is_file()
    assert check_library(Path(root), {**dropped, "c.png": gone_bytes}) == []
