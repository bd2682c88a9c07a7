"""The catalog changes commands make (``edits``, ``arrange``) and the reads they rely on."""

from __future__ import annotations

import os

import pytest

from tests.helpers import canonical_files, drop, encode, scene, write
from watcherd.catalog import Catalog
from watcherd.catalog.finding import TagQuery
from watcherd.commands import arrange, edits, queries
from watcherd.core.config import Config
from watcherd.core.errors import UsageError
from watcherd.core.outcomes import Outcome
from watcherd.core.records import State
from watcherd.decode import imaging
from watcherd.flow.pipeline import Pipeline


def ingest(pipeline: Pipeline, cfg: Config, rel: str, seed: int, size: tuple[int, int] = (320, 240)) -> str:
    """Drop a photo at ``thumbs/rel``, ingest it, return its name."""
    result = pipeline.process(drop(cfg.thumbs_dir / rel, scene(size, seed=seed)))
    assert result.outcome is Outcome.INGESTED and result.name is not None
    return result.name


@pytest.fixture
def names(cfg: Config, pipeline: Pipeline) -> dict[str, str]:
    """cats/a, cats/orange/b, dogs/c (640x480), and d at the top of the tree."""
    return {
        "a": ingest(pipeline, cfg, "cats/tom.jpg", 1),
        "b": ingest(pipeline, cfg, "cats/orange/Garfield.JPG", 2),
        "c": ingest(pipeline, cfg, "dogs/rex.png", 3, (640, 480)),
        "d": ingest(pipeline, cfg, "misc.jpg", 4),
    }


def tags_of(catalog: Catalog, name: str) -> list[str]:
    rec = catalog.image(name)
    assert rec is not None
    return rec.tags


def test_retag_renames_and_merges(catalog: Catalog, names: dict[str, str]) -> None:
    change = edits.retag(catalog, "cats", "felines")
    assert change == {"old": "cats", "new": "felines", "images": 2, "names": sorted([names["a"], names["b"]])}
    assert tags_of(catalog, names["a"]) == ["felines", "320x240"]
    edits.retag(catalog, "orange", "felines")  # b has both now: merged, kept once, in place
    assert tags_of(catalog, names["b"]) == ["felines", "320x240"]
    assert queries.tag_counts(catalog) == {"320x240": 3, "felines": 2, "640x480": 1, "dogs": 1}


def test_retag_and_untag_everywhere_refuse(catalog: Catalog, names: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="no image has the tag 'birds'"):
        edits.retag(catalog, "birds", "avians")
    with pytest.raises(UsageError, match="size tag"):
        edits.retag(catalog, "320x240", "small")
    with pytest.raises(UsageError, match="size tag"):
        edits.retag(catalog, "cats", "640x480")
    with pytest.raises(UsageError, match="not a tag"):
        edits.retag(catalog, "cats", "a/b")
    with pytest.raises(UsageError, match="both 'cats'"):
        edits.retag(catalog, "cats", "cats")
    assert tags_of(catalog, names["a"]) == ["cats", "320x240"]


def test_untag_everywhere_and_missing_images_too(cfg: Config, pipeline: Pipeline, names: dict[str, str]) -> None:
    catalog = pipeline.catalog
    gone = cfg.thumbs_dir / "cats" / "orange" / names["b"]
    gone.unlink()
    pipeline.moves.gone(gone)
    change = edits.untag_everywhere(catalog, "cats")
    assert change["images"] == 2 and change["new"] is None
    assert tags_of(catalog, names["b"]) == ["orange", "320x240"]  # a missing image's record counts too
    with pytest.raises(UsageError, match="no image has the tag 'cats'"):
        edits.untag_everywhere(catalog, "cats")  # applied twice: refused, nothing changes


def test_untag_one(catalog: Catalog, names: dict[str, str]) -> None:
    assert edits.untag(catalog, names["b"], "cats")["tags"] == ["orange", "320x240"]
    with pytest.raises(UsageError, match="has no tag 'cats'"):
        edits.untag(catalog, names["b"], "cats")


def test_forget_only_missing_all_or_nothing(cfg: Config, pipeline: Pipeline, names: dict[str, str]) -> None:
    catalog = pipeline.catalog
    thumb = cfg.thumbs_dir / "cats" / names["a"]
    thumb.unlink()
    pipeline.moves.gone(thumb)
    assert [m["name"] for m in queries.missing(catalog)] == [names["a"]]
    with pytest.raises(UsageError, match="only missing images can be forgotten"):
        edits.forget(catalog, [names["a"], names["b"]])
    with pytest.raises(UsageError, match="no image named"):
        edits.forget(catalog, [names["a"], "320x240_ffffffffffffffff_.png"])
    assert catalog.image(names["a"]) is not None  # refused as a whole
    original = catalog.image(names["a"])
    assert original is not None and original.original is not None
    assert edits.forget(catalog, [names["a"]]) == {"forgotten": [names["a"]]}
    assert catalog.image(names["a"]) is None
    assert queries.missing(catalog) == [] and catalog.counts()["missing"] == 0
    assert names["a"] not in catalog.names_tagged("cats")
    assert cfg.root is not None and (cfg.root / original.original).is_file()  # the original is kept


def test_find_criteria_combine(catalog: Catalog, names: dict[str, str]) -> None:
    def found(**kw: object) -> set[str]:
        return {h["name"] for h in queries.find(catalog, TagQuery(**kw))}  # type: ignore[arg-type]

    a, b, c, d = names["a"], names["b"], names["c"], names["d"]
    assert found(all_of=("cats", "orange")) == {b}
    assert found(any_of=("orange", "dogs")) == {b, c}
    assert found(all_of=("320x240",), none_of=("cats",)) == {d}
    assert found(untagged=True) == {d}
    assert found(filename="garf*") == {b}
    assert found(filename="*.JPG") == {a, b, d}
    assert found(any_of=("cats", "dogs"), none_of=("orange",), filename="*.png") == {c}
    with pytest.raises(UsageError, match="at least one of --tag"):
        queries.find(catalog, TagQuery())


def test_errors_listed(cfg: Config, pipeline: Pipeline) -> None:
    pipeline.process(write(cfg.thumbs_dir / "bad.jpg", b"nope"))
    (item,) = queries.errors(pipeline.catalog)
    assert item["path"] == "thumbs/bad.jpg" and item["attempts"] == 1 and item["reason"]
    assert set(item) == {"path", "reason", "transient", "first_seen", "last_seen", "attempts"}


def test_arrange_by_size_moves_files_and_records(cfg: Config, catalog: Catalog, names: dict[str, str]) -> None:
    p = arrange.plan(cfg, catalog, "by-size", "")
    assert {m.name: m.target for m in p.moves} == {
        n: f"thumbs/by_size/{'640x480' if k == 'c' else '320x240'}/{n}" for k, n in names.items()
    }
    dry = arrange.document(p, dry_run=True)
    assert dry["moved"] == 0 and len(dry["moves"]) == 4
    assert (cfg.thumbs_dir / "cats" / names["a"]).exists()  # planning changes nothing

    done = arrange.execute(cfg, catalog, p)
    assert done["moved"] == 4
    rec = catalog.image(names["b"])
    assert rec is not None and rec.path == f"thumbs/by_size/320x240/{names['b']}" and rec.state is State.PRESENT
    assert rec.tags == ["cats", "orange", "320x240", "by_size"]
    assert (cfg.thumbs_dir / "by_size" / "320x240" / names["b"]).is_file()
    assert canonical_files(cfg.thumbs_dir / "cats") == []
    assert arrange.plan(cfg, catalog, "by-size", "").moves == []  # arranged: nothing left to do


def test_arrange_under_a_folder_and_never_replacing(cfg: Config, catalog: Catalog, names: dict[str, str]) -> None:
    assert cfg.root is not None
    under = arrange.resolve_under(cfg, "cats", cfg.root)
    assert under == "cats" and arrange.resolve_under(cfg, str(cfg.thumbs_dir / "cats" / "orange"), cfg.root)
    with pytest.raises(UsageError, match="not a folder of the thumbs tree"):
        arrange.resolve_under(cfg, "nowhere", cfg.root)
    p = arrange.plan(cfg, catalog, "by-size", under)
    assert sorted(m.name for m in p.moves) == sorted([names["a"], names["b"]])
    squatter = write(cfg.thumbs_dir / "by_size" / "320x240" / names["a"], b"someone else's file")
    done = arrange.execute(cfg, catalog, p)
    assert done["moved"] == 1
    assert {m["name"]: m["skipped"] for m in done["moves"]}[names["a"]] == "a file of that name is already there"
    assert squatter.read_bytes() == b"someone else's file"
    assert (cfg.thumbs_dir / "cats" / names["a"]).is_file()
    rec = catalog.image(names["a"])
    assert rec is not None and rec.path == f"thumbs/cats/{names['a']}"


def test_arrange_rolls_files_back_when_the_transaction_fails(
    cfg: Config, catalog: Catalog, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = arrange.plan(cfg, catalog, "by-size", "")
    calls = []
    real = catalog.put_image

    def failing(rec: object) -> None:
        calls.append(rec)
        if len(calls) == 3:
            raise OSError("disk full")
        real(rec)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "put_image", failing)
    with pytest.raises(OSError, match="disk full"):
        arrange.execute(cfg, catalog, p)
    for m in p.moves:
        assert cfg.root is not None and (cfg.root / m.source).is_file() and not (cfg.root / m.target).exists()
    rec = catalog.image(names["a"])
    assert rec is not None and rec.path == f"thumbs/cats/{names['a']}"


@pytest.mark.parametrize("where", ["linked, first name still there", "moved, folder not yet synced"])
def test_a_ctrl_c_during_a_move_of_arrange_takes_every_move_back(
    cfg: Config, catalog: Catalog, names: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Ctrl-C lands inside the third file's move: that move is taken back however far it got,
    as are the two before, and the folders the arrangement made go (an interrupted arrange
    is all or nothing, as the transaction is; before, the file being moved stayed moved)."""
    from watcherd.fs import fsops

    p = arrange.plan(cfg, catalog, "by-size", "")

    def placed() -> list[str]:
        return sorted(f.relative_to(cfg.thumbs_dir).as_posix() for f in cfg.thumbs_dir.rglob("*x*_*_.png"))

    before = placed()
    assert len(before) == 4
    hook = "remove" if where.startswith("linked") else "fsync_dir"
    moves: list[object] = []
    if hook == "remove":
        real_remove = fsops.OldName.remove

        def remove(self: fsops.OldName, *, sync: bool = True) -> None:
            moves.append(self)
            if len(moves) == 3:
                raise KeyboardInterrupt
            real_remove(self, sync=sync)

        monkeypatch.setattr(fsops.OldName, "remove", remove)
    else:
        real_sync = fsops.fsync_dir

        def fsync_dir(path: object) -> None:
            moves.append(path)
            if len(moves) == 3:
                raise KeyboardInterrupt
            real_sync(path)  # type: ignore[arg-type]

        monkeypatch.setattr(fsops, "fsync_dir", fsync_dir)
    with pytest.raises(KeyboardInterrupt):
        arrange.execute(cfg, catalog, p)
    monkeypatch.undo()
    assert placed() == before  # every thumbnail where it was, and no second name of one
    assert not (cfg.thumbs_dir / "by_size").exists()
    for name in names.values():
        rec = catalog.image(name)
        assert rec is not None and (cfg.thumbs_dir.parent / rec.path).is_file()


def test_arrange_by_similarity_groups_look_alikes(cfg: Config, pipeline: Pipeline) -> None:
    base = scene((320, 240), seed=42)
    write(cfg.thumbs_dir / "x" / "a.jpg", encode(base, "JPEG", quality=95))
    write(cfg.thumbs_dir / "y" / "b.jpg", encode(base.crop((10, 8, 310, 232)).resize((320, 240)), "JPEG"))
    write(cfg.thumbs_dir / "z" / "c.jpg", encode(scene((320, 240), seed=41).rotate(90), "JPEG"))
    for path in sorted(cfg.thumbs_dir.rglob("*.jpg")):
        pipeline.process(path)
    catalog = pipeline.catalog
    os.makedirs(cfg.thumbs_dir / "by_ham" / "7")  # numbers already in use are not reused
    os.makedirs(cfg.thumbs_dir / "by_ham" / "\u00b2")  # a name of other digits (²) is no number
    p = arrange.plan(cfg, catalog, "by-similarity", "")
    assert len(p.moves) == 2 and {m.target.rsplit("/", 1)[0] for m in p.moves} == {"thumbs/by_ham/8"}
    arrange.execute(cfg, catalog, p)
    moved = canonical_files(cfg.thumbs_dir / "by_ham" / "8")
    assert len(moved) == 2
    rec = catalog.image(moved[0].name)
    assert rec is not None and "by_ham" in rec.tags and "8" not in rec.tags
    assert canonical_files(cfg.thumbs_dir / "z")  # a picture like no other stays where it is
    assert arrange.plan(cfg, catalog, "by-similarity", "").moves == []  # a group keeps its number


def test_forget_refuses_an_image_an_undecided_collision_names(cfg: Config, pipeline: Pipeline) -> None:
    """Forgotten, it would leave the collision undecidable: neither keep decision, nor deleting
    the newcomer's thumbnail (keep-existing), could be made any more (found by the interleavings:
    the thumbs tree put aside after such a forget left the collision stuck)."""
    catalog = pipeline.catalog
    im = scene(seed=6)
    existing = write(cfg.thumbs_dir / "a.png", encode(im, "PNG"))
    name = pipeline.process(existing).name
    assert name is not None
    assert pipeline.process(write(cfg.thumbs_dir / "a.jpg", encode(im, "JPEG"))).outcome is Outcome.COLLISION
    (col,) = catalog.collisions()
    thumb = cfg.thumbs_dir / name
    thumb.unlink()
    pipeline.moves.gone(thumb)
    with pytest.raises(UsageError, match=f"undecided collision {col.id} compares a newcomer with this image"):
        edits.forget(catalog, [name])
    assert catalog.image(name) is not None
    edits.resolve(cfg, catalog, col.id, "keep-existing", render=imaging.render)
    assert edits.forget(catalog, [name]) == {"forgotten": [name]}


def test_an_older_catalog_gains_the_forget_trigger(cfg: Config, catalog: Catalog, names: dict[str, str]) -> None:
    catalog.conn.execute("DROP TRIGGER forget_image")
    catalog.close()
    with Catalog(cfg.database_path) as again:
        assert again.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'forget_image'").fetchone()[0] == 1
        assert again.counts()["present"] == 4
