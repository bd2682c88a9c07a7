"""Near-duplicates decided keep-existing / keep-newcomer: the pure rules, then files and catalog
after each decision, after ``undo``, and when the merged bytes are dropped again."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from tests.helpers import digest, encode, scene, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.commands import duplicates, edits
from watcherd.core.collisionrecords import Decision, Verdict
from watcherd.core.config import Config
from watcherd.core.errors import UsageError
from watcherd.core.nearpairs import Merged, NearRecord, merge, names_of, sides, unmerge, widest
from watcherd.core.outcomes import Outcome
from watcherd.core.records import ImageRecord, State
from watcherd.decode import imaging
from watcherd.decode.rendered import Rendered, RenderSpec
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def record(name: str, first_seen: str, tags: list[str], filename: str) -> ImageRecord:
    w, h = name.split("_")[0].split("x")
    return ImageRecord(
        name=name,
        hash=name.split("_")[1],
        width=int(w),
        height=int(h),
        path=f"thumbs/{name}",
        state=State.PRESENT,
        first_seen=first_seen,
        last_seen=first_seen,
        tags=tags,
        original_filename=filename,
    )


# -- the pure rules ------------------------------------------------------------------


def test_existing_is_the_first_catalogued_and_newcomer_the_last() -> None:
    a = record("64x48_00000000000000ff_.png", "2024-01-02T00:00:00+00:00", [], "a.jpg")
    b = record("32x24_00000000000000fe_.png", "2024-01-01T00:00:00+00:00", [], "b.jpg")
    c = record("16x12_00000000000000fc_.png", "2024-01-03T00:00:00+00:00", [], "c.jpg")
    assert [r.name for r in sides([a, b, c])] == [b.name, c.name]
    tie = record("8x6_00000000000000f0_.png", b.first_seen, [], "d.jpg")
    assert sides([b, tie])[0] is b and sides([tie, b])[0] is b  # a tie: by name
    assert names_of("x.png+y.png+x.png") == ["x.png", "y.png"]
    assert widest(["00000000000000ff", "00000000000000fe", "00000000000000fc"]) == 2


def test_the_kept_image_gains_folder_tags_and_file_names_but_no_other_size_tag() -> None:
    kept = record("64x48_00000000000000ff_.png", "t1", ["cats", "64x48"], "a.jpg")
    other = record("32x24_00000000000000fe_.png", "t2", ["dogs", "cats", "32x24"], "b.jpg")
    other.other_filenames = ["b copy.jpg", "a.jpg"]
    tags, names = merge(kept, [other])
    assert kept.tags == ["cats", "64x48", "dogs"] and tags == ["dogs"]
    assert kept.other_filenames == ["b.jpg", "b copy.jpg"] == names
    kept.tags.append("later")
    unmerge(kept, tags, names)
    assert kept.tags == ["cats", "64x48", "later"] and kept.other_filenames == []


def test_a_near_record_round_trips_through_json() -> None:
    other = record("32x24_00000000000000fe_.png", "t2", ["dogs"], "b.jpg")
    dec = Decision(Verdict.KEEP_EXISTING, "t3", image="64x48_00000000000000ff_.png", added_tags=["dogs"])
    near = NearRecord("a+b", dec, [Merged(other.to_json(), "originals/_duplicates/x.jpg")], ["b.jpg"], {"new": 1})
    again = NearRecord.from_json(near.to_json())
    assert again == near and again.to_json() == near.to_json()
    assert again.holding("f" * 64) is None and again.merged[0].image == other


# -- files and catalog ----------------------------------------------------------------


@pytest.fixture
def clocked(cfg: Config, catalog: Catalog) -> Pipeline:
    """A pipeline whose clock moves a minute per reading: each drop has its own ``first_seen``."""
    ticks = itertools.count()
    return Pipeline(cfg, catalog, now=lambda: 1_700_000_000.0 + 60 * next(ticks))


def near_library(cfg: Config, pipeline: Pipeline, n: int = 2) -> tuple[list[str], dict[str, bytes]]:
    """cats/a.png, then the same picture smaller in dogs/b.png (and birds/c.png): near-duplicates,
    with their own names. Returns the names, oldest first, and the dropped bytes."""
    im = scene(seed=32)
    drops = [("cats", "a.png", im), ("dogs", "b.png", im.resize((318, 240))), ("birds", "c.png", im.resize((316, 240)))]
    dropped, names = {}, []
    for folder, name, picture in drops[:n]:
        data = encode(picture, "PNG")
        dropped[name] = data
        result = pipeline.process(write(cfg.thumbs_dir / folder / name, data))
        assert result.outcome is Outcome.INGESTED and result.name is not None
        names.append(result.name)
    assert len(set(names)) == n
    return names, dropped


def group(cfg: Config) -> list[dict[str, object]]:
    return [dict(g) for g in duplicates.near_groups(cfg, 8)]


def resolve(cfg: Config, catalog: Catalog, ident: str, decision: str) -> str:
    return edits.resolve(cfg, catalog, ident, decision, render=imaging.render)["image"] or ""


def files(cfg: Config) -> dict[str, str]:
    assert cfg.root is not None
    return {
        p.relative_to(cfg.root).as_posix(): digest(p.read_bytes())
        for top in (cfg.thumbs_dir, cfg.originals_dir)
        for p in top.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("verdict", ["keep-existing", "keep-newcomer"])
def test_keeping_one_of_a_pair_merges_the_other_and_undo_restores_it_exactly(
    cfg: Config, catalog: Catalog, clocked: Pipeline, verdict: str
) -> None:
    root = cfg.root or Path()
    (older, newer), dropped = near_library(cfg, clocked)
    (item,) = group(cfg)
    assert item["id"] == "+".join(sorted([older, newer])) and (item["existing"], item["newcomer"]) == (older, newer)
    before = {r.name: r.to_json() for r in catalog.images()}
    files_before = files(cfg)
    kept, gone = (older, newer) if verdict == "keep-existing" else (newer, older)
    gone_rec = catalog.image(gone)
    assert gone_rec is not None and gone_rec.original is not None

    assert resolve(cfg, catalog, str(item["id"]), verdict) == kept
    assert [r.name for r in catalog.images()] == [kept]
    holder = catalog.image(kept)
    assert holder is not None
    gone_folder, gone_file = ("dogs", "b.png") if gone == newer else ("cats", "a.png")
    assert gone_folder in holder.tags and gone_file in holder.other_filenames
    assert gone_rec.size_tag not in holder.tags
    assert not (root / gone_rec.path).exists()  # its thumbnail (ours) is gone
    archived = f"originals/_duplicates/{gone[: -len('.png')]}~{(gone_rec.sha256 or '')[:12]}.png"
    assert digest((root / archived).read_bytes()) == gone_rec.sha256
    assert not (root / gone_rec.original).exists()
    assert group(cfg) == []  # never listed again
    near = catalog.near_decision(str(item["id"]))
    assert near is not None and near.merged[0].archived == archived and near.merged[0].record == before[gone]
    assert catalog.near_holding(gone_rec.sha256 or "") == near  # found by its bytes (the near_merged table)
    (decided,) = duplicates.near_kept(catalog)
    assert decided["decision"] == verdict and decided["decided"] and decided["name"] == kept
    assert archived in decided["paths"] and decided["max_distance"] == item["max_distance"]
    assert check_library(root, dropped) == []

    assert edits.undo(cfg, catalog, render=imaging.render)["id"] == item["id"]
    assert {r.name: r.to_json() for r in catalog.images()} == before  # both records exactly as they were
    assert catalog.near_decisions() == []
    assert catalog.near_holding(gone_rec.sha256 or "") is None
    after = files(cfg)
    assert set(after) == set(files_before)  # every file back at its place (thumbnails made again)
    assert {k: v for k, v in after.items() if k.startswith("originals/")} == {
        k: v for k, v in files_before.items() if k.startswith("originals/")
    }
    assert [g["id"] for g in group(cfg)] == [item["id"]]
    assert check_library(root, dropped) == []


def test_a_group_of_three_keeps_one_and_a_pair_of_it_leaves_the_rest_listed(
    cfg: Config, catalog: Catalog, clocked: Pipeline
) -> None:
    root = cfg.root or Path()
    names, dropped = near_library(cfg, clocked, 3)
    (item,) = group(cfg)
    assert item["names"] == sorted(names) and (item["existing"], item["newcomer"]) == (names[0], names[2])
    # the whole group: the newest is kept, both others merge into it
    assert resolve(cfg, catalog, str(item["id"]), "keep-newcomer") == names[2]
    assert [r.name for r in catalog.images()] == [names[2]]
    kept = catalog.image(names[2])
    assert kept is not None and {"cats", "dogs", "birds"} <= set(kept.tags)
    assert group(cfg) == [] and check_library(root, dropped) == []
    edits.undo(cfg, catalog, render=imaging.render)
    assert sorted(r.name for r in catalog.images()) == sorted(names)

    # one pair of it: the decided one leaves the group, the other two stay listed
    pair = "+".join(sorted(names[:2]))
    assert resolve(cfg, catalog, pair, "keep-existing") == names[0]
    (rest,) = group(cfg)
    assert rest["names"] == sorted([names[0], names[2]])
    assert check_library(root, dropped) == []


def test_a_keep_logs_the_kept_image_apart_from_the_merged_ones(
    cfg: Config, catalog: Catalog, clocked: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    names, _ = near_library(cfg, clocked, 3)
    with caplog.at_level(logging.INFO, logger="watcherd"):
        resolve(cfg, catalog, "+".join(sorted(names)), "keep-newcomer")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decided keep-newcomer")]
    kept, merged = line.split(": kept ", 1)[1].split(", merged ", 1)
    assert kept == names[2] and sorted(merged.split(", ")) == sorted(names[:2])


def test_the_merged_bytes_dropped_again_are_settled_as_before(cfg: Config, catalog: Catalog, clocked: Pipeline) -> None:
    root = cfg.root or Path()
    (older, newer), dropped = near_library(cfg, clocked)
    resolve(cfg, catalog, f"{older}+{newer}", "keep-existing")
    again = write(cfg.thumbs_dir / "birds" / "b again.png", dropped["b.png"])
    result = clocked.process(again)
    assert result.outcome is Outcome.INGESTED and result.name == older and result.detail == "settled as decided before"
    assert not again.exists() and [r.name for r in catalog.images()] == [older]
    kept = catalog.image(older)
    assert kept is not None and "birds" in kept.tags and "b again.png" in kept.other_filenames
    (near,) = catalog.near_decisions()
    assert near.decision.again == [f"originals/_duplicates/{newer[: -len('.png')]}~again.png"]
    assert (root / near.decision.again[0]).read_bytes() == dropped["b.png"]
    assert not near.decision.setting_aside
    assert check_library(root, {**dropped, "b again.png": dropped["b.png"]}) == []


def test_refusals_change_nothing(cfg: Config, catalog: Catalog, clocked: Pipeline) -> None:
    (older, newer), _ = near_library(cfg, clocked)
    ident = "+".join(sorted([older, newer]))
    before = files(cfg)
    for bad, why in [
        (older, "no collision"),
        (f"{older}+64x48_0000000000000000_.png", "not catalogued"),
    ]:
        with pytest.raises(UsageError, match=why):
            resolve(cfg, catalog, bad, "keep-existing")
    resolve(cfg, catalog, ident, "keep-existing")
    with pytest.raises(UsageError, match="already decided"):
        resolve(cfg, catalog, ident, "keep-newcomer")
    edits.undo(cfg, catalog, render=imaging.render)
    resolve(cfg, catalog, ident, "distinct")
    with pytest.raises(UsageError, match="already decided"):
        resolve(cfg, catalog, ident, "keep-existing")
    assert set(files(cfg)) == set(before)  # (the undone thumbnail was made again: same name, same picture)


def test_a_merged_source_file_is_not_decoded_again_by_each_scan(cfg: Config, catalog: Catalog) -> None:
    decoded: list[str] = []

    def render(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"") -> Rendered:
        decoded.append(filename)
        return imaging.render(data, spec, filename, sha256, now, sidecar)

    ticks = itertools.count()
    pipeline = Pipeline(cfg, catalog, render=render, now=lambda: 1_700_000_000.0 + 60 * next(ticks))
    im = scene(seed=32)
    first = pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", encode(im, "PNG")))
    inbox = cfg.source_dirs[0] / "b.png"
    second = pipeline.process(write(inbox, encode(im.resize((318, 240)), "PNG")))
    assert first.name and second.name and second.outcome is Outcome.INGESTED
    resolve(cfg, catalog, f"{first.name}+{second.name}", "keep-existing")
    assert inbox.exists()  # a source file stays where it is
    decoded.clear()
    report = reconcile(Pipeline(cfg, catalog, render=render), reason="test", settle=0)
    assert decoded == []  # known by its size and time, as any source file already done
    assert report.counts.get("ingested", 0) == 0 and [r.name for r in catalog.images()] == [first.name]


def test_undo_puts_a_merged_thumbnail_back_into_its_folder_renamed_since(
    cfg: Config, catalog: Catalog, clocked: Pipeline
) -> None:
    root = cfg.root or Path()
    (older, newer), dropped = near_library(cfg, clocked)
    (item,) = group(cfg)
    assert resolve(cfg, catalog, str(item["id"]), "keep-existing") == older  # dogs/ now holds nothing of ours
    (cfg.thumbs_dir / "pets").mkdir()
    (cfg.thumbs_dir / "dogs").rename(cfg.thumbs_dir / "pets" / "hounds")
    assert edits.undo(cfg, catalog, render=imaging.render)["id"] == item["id"]
    back = catalog.image(newer)
    assert back is not None and back.path == f"thumbs/pets/hounds/{newer}"
    assert (root / back.path).is_file() and not (cfg.thumbs_dir / "dogs").exists()
    assert {"dogs", "pets", "hounds"} <= set(back.tags)
    assert check_library(root, dropped) == []


def test_a_copy_of_a_merged_images_thumbnail_stays_a_copy_and_brings_nothing_back(
    cfg: Config, catalog: Catalog, clocked: Pipeline
) -> None:
    """A thumbnail duplicated in place (``b (copy).png``) before a near keep merged its image into
    another is a copy from before the decision: it is not named back and adopted as an image the
    person merged away, and it decides no collision of the same bytes whose newcomer is still in
    ``_collisions/`` (soak seed 255)."""
    (older, newer), dropped = near_library(cfg, clocked)
    gone = catalog.image(newer)
    assert gone is not None
    thumb = (cfg.root or Path()) / gone.path
    copy_named = thumb.with_name(f"{thumb.stem} (copy).png")
    copy_named.write_bytes(thumb.read_bytes())
    assert "a copy of" in clocked.process(copy_named).detail
    again = clocked.process(write(cfg.thumbs_dir / "birds" / "b again.png", dropped["b.png"]))
    assert again.outcome is Outcome.COLLISION  # the same bytes dropped again: undecided
    (item,) = group(cfg)
    assert resolve(cfg, catalog, str(item["id"]), "keep-existing") == older  # newer merged into older
    seen = clocked.process(copy_named)  # looked at again: the file beside it went
    assert seen.outcome is Outcome.ERROR and seen.detail.startswith(f"a copy of {newer} from before a near")
    assert copy_named.exists() and not thumb.exists()
    assert clocked.process(copy_named).detail == "already reported"  # not read again while its name is empty
    assert catalog.image(newer) is None  # not brought back
    (col,) = catalog.collisions()
    assert col.decision is None  # decided nothing
    reconcile(clocked, reason="test", settle=0)
    assert catalog.image(newer) is None and catalog.collisions()[0].decision is None
    assert check_library(cfg.root or Path(), dropped, bad={copy_named.name}) == []
    edits.undo(cfg, catalog, render=imaging.render)  # the merge taken back: its thumbnail made again
    assert thumb.exists() and catalog.image(newer) is not None
    assert clocked.process(copy_named).detail == f"a copy of {newer} in the same folder; left as it is"
