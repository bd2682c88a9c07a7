"""The CLI in-process on a library made by ``watcherd scan`` (which decodes in worker processes)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import imagehash
import pytest
from PIL import Image

from tests.helpers import drop, encode, scene, sigint_default, write
from tests.helpers import in_process as run
from watcherd.catalog import Catalog
from watcherd.cli import main
from watcherd.core.config import Config


@pytest.fixture
def library(cfg: Config, capsys: pytest.CaptureFixture[str]) -> Path:
    """A scanned library: cats/a, cats/orange/b, a collision with cats/a and a bad file."""
    data = encode(scene(seed=1))
    write(cfg.thumbs_dir / "cats" / "a.jpg", data)
    drop(cfg.thumbs_dir / "cats" / "orange" / "b.jpg", seed=2)
    write(cfg.thumbs_dir / "later" / "dup.jpg", data)
    write(cfg.thumbs_dir / "bad.jpg", b"nope")
    assert main(["scan", str(cfg.root), "--json"]) == 0
    capsys.readouterr()
    assert cfg.root is not None
    return cfg.root


def test_status_json_contract(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _err = run(capsys, "status", str(library), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["images"] == 2
    assert data["missing"] == 0
    assert data["tags"] == 3  # cats, orange, 320x240
    assert data["collisions"] == 1
    assert data["errors"] == 1
    assert data["database"] == str(library / ".watcherd" / "catalog.sqlite")
    assert data["daemon"] is None
    assert data["last_scan"]["reason"] == "scan"


def test_tags_all_and_one(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "tags", str(library), "--json")
    assert code == 0
    assert json.loads(out) == {"320x240": 2, "cats": 2, "orange": 1}
    names = sorted(p.name for p in (library / "thumbs").rglob("*_.png") if "_collisions" not in p.parts)
    code, out, _ = run(capsys, "tags", str(library), names[0], "--json")
    one = json.loads(out)
    assert code == 0 and one["name"] == names[0] and "cats" in one["tags"] and one["path"].startswith("thumbs/")
    hash_only = names[0].split("_")[1]
    code, out, _ = run(capsys, "tags", str(library), hash_only, "--json")
    assert code == 0 and json.loads(out)["name"] == names[0]


def test_tags_single_argument_is_root_if_a_directory(
    capsys: pytest.CaptureFixture[str], library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(library)
    code, out, _ = run(capsys, "tags", "--json")
    assert code == 0 and "cats" in json.loads(out)
    code, out, _ = run(capsys, "tags", str(library), "--json")
    assert code == 0 and "cats" in json.loads(out)
    code, _, err = run(capsys, "tags", "ffffffffffffffff")
    assert code == 2 and err.startswith("watcherd: error: no image with hash")


def test_find_requires_all_tags(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "find", str(library), "--tag", "cats", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = run(capsys, "find", str(library), "--tag", "cats", "--tag", "orange", "--json")
    hits = json.loads(out)
    assert len(hits) == 1 and set(hits[0]) >= {"name", "path"} and "/orange/" in hits[0]["path"]


def test_untag(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    _, out, _ = run(capsys, "find", str(library), "--tag", "orange", "--json")
    name = json.loads(out)[0]["name"]
    code, out, _ = run(capsys, "untag", str(library), name, "cats", "--json")
    assert code == 0 and "cats" not in json.loads(out)["tags"]
    code, _, err = run(capsys, "untag", str(library), name, "cats")
    assert code == 2 and "has no tag 'cats'" in err and err.count("\n") == 1


def test_errors_missing_forget(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "errors", str(library), "--json")
    (item,) = json.loads(out)
    assert code == 0 and item["path"] == "thumbs/bad.jpg" and item["attempts"] == 1
    _, out, _ = run(capsys, "find", str(library), "--tag", "orange", "--json")
    name = json.loads(out)[0]["name"]
    code, _, err = run(capsys, "forget", str(library), name)
    assert code == 2 and "only missing images can be forgotten" in err and err.count("\n") == 1
    (library / "thumbs" / "cats" / "orange" / name).unlink()
    assert main(["scan", str(library)]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "missing", str(library), "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == [name]
    code, out, _ = run(capsys, "forget", str(library), name, "--json")
    assert code == 0 and json.loads(out) == {"forgotten": [name]}
    code, _, err = run(capsys, "forget", str(library), name)
    assert code == 2 and "no image named" in err


def test_find_criteria_from_the_command_line(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "find", str(library), "--any", "orange", "--any", "nothing", "--json")
    assert code == 0 and len(json.loads(out)) == 1
    code, out, _ = run(capsys, "find", str(library), "--tag", "cats", "--not", "orange", "--filename", "A.*")
    assert code == 0 and out.count("\n") == 1 and "thumbs/cats/" in out
    code, out, _ = run(capsys, "find", str(library), "--untagged", "--json")
    assert code == 0 and out == "[]\n"


def test_find_pages_and_streams_the_same_json(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "find", str(library), "--tag", "320x240", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2 and out == json.dumps(hits, indent=2, ensure_ascii=False) + "\n"
    assert [h["path"] for h in hits] == sorted(h["path"] for h in hits)
    _, out, _ = run(capsys, "find", str(library), "--tag", "320x240", "--limit", "1", "--offset", "1", "--json")
    assert json.loads(out) == hits[1:]
    _, out, _ = run(capsys, "find", str(library), "--tag", "320x240", "--limit", "1")
    assert out == hits[0]["path"] + "\n"
    code, _, err = run(capsys, "find", str(library), "--tag", "cats", "--limit", "-1")
    assert code == 2 and err == "watcherd: error: --limit and --offset must not be negative\n"


def test_dupes_json(capsys: pytest.CaptureFixture[str], library: Path) -> None:
    code, out, _ = run(capsys, "dupes", str(library), "--json")
    (item,) = json.loads(out)
    assert code == 0 and item["kind"] == "exact"
    assert item["name"] == "320x240_00000011ffefefff_.png"  # pinned
    assert item["name"] == f"320x240_{imagehash.whash(Image.open(io.BytesIO(encode(scene(seed=1)))))}_.png"
    assert len(item["paths"]) == 4 and all((library / p).exists() for p in item["paths"])


def test_root_from_config(capsys: pytest.CaptureFixture[str], library: Path, tmp_path: Path) -> None:
    conf = tmp_path / "w.yaml"
    conf.write_text(f"root: {library}\n")
    code, out, _ = run(capsys, "status", "-c", str(conf), "--json")
    assert code == 0 and json.loads(out)["images"] == 2


def test_similar_and_near_dupes(capsys: pytest.CaptureFixture[str], cfg: Config) -> None:
    base = scene((320, 240), seed=42)
    write(cfg.thumbs_dir / "a.jpg", encode(base, "JPEG", quality=95))
    # A near duplicate (cropped by 3% and scaled back: 4 bits away) and an unrelated picture.
    cropped = base.crop((10, 8, 310, 232)).resize((320, 240))
    write(cfg.thumbs_dir / "b.jpg", encode(cropped, "JPEG"))
    write(cfg.thumbs_dir / "c.jpg", encode(scene((320, 240), seed=41).rotate(90), "JPEG"))
    assert cfg.root is not None
    assert main(["scan", str(cfg.root)]) == 0
    capsys.readouterr()
    probe = write(cfg.root.parent / "probe.jpg", encode(base, "JPEG", quality=95))

    code, out, _ = run(capsys, "similar", str(cfg.root), str(probe), "--distance", "8", "--json")
    hits = json.loads(out)
    assert code == 0 and [set(h) for h in hits] == [{"name", "distance", "path", "match"}] * len(hits)
    assert hits and hits[0]["distance"] == 0 and 4 in [h["distance"] for h in hits]
    whole = [h["distance"] for h in hits if h["match"] == "whole"]  # then crops, nearest first too
    assert [h["match"] for h in hits] == sorted(h["match"] for h in hits)[::-1] and whole == sorted(whole)
    name = hits[0]["name"]
    code, out, _ = run(capsys, "similar", str(cfg.root), name.split("_")[1], "-d", "0", "--json")
    hits = json.loads(out)
    assert code == 0 and [h["name"] for h in hits if h["match"] == "whole"] == [name]
    assert [h["match"] for h in hits[1:]] == ["crop"] * (len(hits) - 1)  # the 3% crop, by its windows

    code, out, _ = run(capsys, "dupes", str(cfg.root), "--near", "4", "--json")
    items = json.loads(out)
    assert code == 0 and all("kind" in i for i in items)
    (near,) = [i for i in items if i["kind"] == "near"]
    assert len(near["names"]) == 2 and near["max_distance"] == 4
    assert near["match"] == "whole"
    # Beyond --near, the crop is still found: by its window hashes.
    code, out, _ = run(capsys, "dupes", str(cfg.root), "--near", "3", "--json")
    (near,) = [i for i in json.loads(out) if i["kind"] == "near"]
    assert near["names"] == sorted(near["names"]) and near["match"] == "crop"

    code, _, err = run(capsys, "similar", str(cfg.root), "ffffffffffffffff", "-d", "99")
    assert code == 2 and "--distance must be from 0 to" in err


def test_scan_retries_a_truncated_file_then_counts_it(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    whole = encode(scene((640, 480), seed=5))
    write(cfg.thumbs_dir / "half.jpg", whole[: len(whole) // 2])  # as a copy still under way
    write(cfg.thumbs_dir / "whole.jpg", whole)
    code, out, _err = run(capsys, "scan", str(cfg.root), "--json")
    assert code == 0
    counts = json.loads(out)["counts"]
    assert counts == {"ingested": 1, "error": 1}  # the retries are not counted, the final outcome is
    (err,) = json.loads(run(capsys, "errors", str(cfg.root), "--json")[1])
    assert err["path"] == "thumbs/half.jpg" and "truncated" in err["reason"]
    assert (cfg.thumbs_dir / "half.jpg").read_bytes() == whole[: len(whole) // 2]  # left as it was


def test_an_old_truncated_file_costs_one_scan_then_nothing_until_retried(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = encode(scene((640, 480), seed=6))
    half = write(cfg.thumbs_dir / "half.jpg", whole[: len(whole) // 2])
    os.utime(half, (time.time() - 3600,) * 2)  # an hour old: no writer is coming back
    root = str(cfg.root)

    def attempts() -> list[int]:
        return [e["attempts"] for e in json.loads(run(capsys, "errors", root, "--json")[1])]

    assert json.loads(run(capsys, "scan", root, "--json")[1])["counts"] == {"error": 1}
    assert attempts() == [1]  # read once: not tried again within the scan
    assert json.loads(run(capsys, "scan", root, "--json")[1])["counts"] == {"ignored": 1}
    assert attempts() == [1]  # nor by the next scan

    code, out, _ = run(capsys, "errors", root, "--retry", "--json")
    assert code == 0 and json.loads(out) == {"retried": ["thumbs/half.jpg"]}
    assert json.loads(run(capsys, "errors", root, "--json")[1]) == []
    assert json.loads(run(capsys, "scan", root, "--json")[1])["counts"] == {"error": 1}  # read again
    assert attempts() == [1]
    code, out, _ = run(capsys, "errors", root, "--retry")
    assert code == 0 and out == "forgot 1 error record: those files are read again\n"
    assert half.read_bytes() == whole[: len(whole) // 2]


def test_a_scan_writes_the_export_only_when_it_lags_the_catalog(
    capsys: pytest.CaptureFixture[str], library: Path, cfg: Config
) -> None:
    export = library / ".watcherd" / "catalog.export.json"
    before = export.stat()
    assert run(capsys, "scan", str(library), "--json")[0] == 0  # nothing changed; when it ran is not exported
    assert export.stat().st_ino == before.st_ino
    assert json.loads(run(capsys, "status", str(library), "--json")[1])["last_scan"]["reason"] == "scan"
    # A change committed by a writer that stopped before exporting (a crash): the next scan,
    # which itself changes nothing, finds the export behind and writes it.
    with Catalog(cfg.database_path) as catalog:
        rec = next(r for r in catalog.images() if "cats" in r.tags)
        rec.tags = [*rec.tags, "kept-by-a-crashed-daemon"]
        with catalog.transaction():
            catalog.put_image(rec)
    assert run(capsys, "scan", str(library), "--json")[0] == 0
    assert export.stat().st_ino != before.st_ino
    exported = json.loads(export.read_text())["images"][rec.name]
    assert "kept-by-a-crashed-daemon" in exported["tags"]
    after = export.stat()
    assert run(capsys, "scan", str(library), "--json")[0] == 0
    assert export.stat().st_ino == after.st_ino
    export.unlink()  # gone: written again
    assert run(capsys, "scan", str(library), "--json")[0] == 0 and export.exists()


def _loaded(args: list[str], heavy: tuple[str, ...]) -> tuple[Any, list[str]]:
    """``watcherd ARGS`` run as its own process: its JSON answer, and which modules starting
    with one of ``heavy`` it loaded."""
    import subprocess
    import sys

    probe = (
        "import json, runpy, sys\n"
        f"sys.argv = ['watcherd', *{args!r}]\n"
        "try:\n    runpy.run_module('watcherd', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({heavy!r}))), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])


def test_find_loads_neither_the_keeper_rule_nor_the_near_groups(library: Path) -> None:
    """``find`` and ``status`` answer at a glance: the modules only ``dupes``, ``similar`` and the
    writer need (and numpy, Pillow) stay unloaded in their process."""
    heavy = ("watcherd.commands.duplicates", "watcherd.core.keeper", "watcherd.near", "watcherd.decide", "numpy", "PIL")
    answer, loaded = _loaded(["find", str(library), "--tag", "cats", "--json"], heavy)
    assert answer and loaded == []


def test_a_scan_with_nothing_to_decode_loads_no_decoder(library: Path) -> None:
    """A rescan of a current library reads the tree and the catalog: NumPy, ImageHash and the
    decoding module stay unloaded in its process (they cost more than the walk at 100,000)."""
    heavy = ("numpy", "imagehash", "pillow_heif", "watcherd.decode.imaging")
    answer, loaded = _loaded(["scan", str(library), "--json"], heavy)
    assert set(answer["counts"]) <= {"unchanged", "ignored"}
    assert loaded == []


def test_a_scan_removes_our_leftover_temporaries_everywhere_and_nothing_else(cfg: Config, library: Path) -> None:
    """A crash leaves reserved-name temporaries in the tree, the collisions folder, the originals
    and the state folder: the next scan removes every one of them and leaves other files be."""
    from watcherd.core.filters import TEMP_PREFIX

    left = [
        cfg.thumbs_dir / "cats" / f"{TEMP_PREFIX}1-aa.png",
        cfg.thumbs_dir / "deep" / "er" / f"{TEMP_PREFIX}2-bb.png",
        cfg.thumbs_dir / cfg.collisions / f"{TEMP_PREFIX}3-cc.png",
        cfg.originals_dir / f"{TEMP_PREFIX}4-dd.jpg",
        cfg.state_dir / f"{TEMP_PREFIX}5-ee",
    ]
    mine = cfg.thumbs_dir / "cats" / "watcherd-tmp-but-not-ours.txt"
    for path in [*left, mine]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert main(["scan", str(library), "--json"]) == 0
    assert [p for p in left if p.exists()] == [] and mine.read_bytes() == b"x"


def test_a_ctrl_c_python_drops_in_a_callback_still_stops_the_command(tmp_path: Path) -> None:
    """Seed 561 of the interleavings: a SIGINT landing in the import system's lock callback was
    printed as "Exception ignored" and lost, and the interrupted scan ended 0. Here the
    interrupt is raised in a weakref callback, as Python raises it there, in a process of its
    own (the hook is per process). Without the hook the loop runs its 30 s and says so."""
    script = (
        "import sys, time, weakref\n"
        "from watcherd.process import keep_interrupts\n"
        "keep_interrupts()\n"
        "class Held: pass\n"
        "def dropped(_):\n"
        "    raise KeyboardInterrupt\n"
        "held = Held(); ref = weakref.ref(held, dropped); del held\n"
        "try:\n"
        "    for _ in range(3000): time.sleep(0.01)  # 30 s unless stopped\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped'); sys.exit(130)\n"
        "print('went on')\n"
    )
    # SIGINT as a terminal gives it (Python raises KeyboardInterrupt only then): the suite's
    # process may have it ignored by now, and a child inherits that.
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        preexec_fn=sigint_default,
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (130, "stopped", "")
