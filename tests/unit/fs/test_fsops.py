"""Safe file operations: a move's first name goes only while it still names the moved file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import write
from watcherd.core.config import Config
from watcherd.fs import fsops


def test_a_batch_of_moves_removes_first_names_through_renamed_folders(tmp_path: Path) -> None:
    inbox, dest = tmp_path / "inbox", tmp_path / "originals"
    (inbox).mkdir()
    (inbox / "a.jpg").write_bytes(b"a")
    with fsops.OldNames() as later:
        moved = fsops.move_no_replace(inbox / "a.jpg", dest, "A.jpg", later)
        os.rename(inbox, tmp_path / "sorted")  # dragged before the first names go
        fsops.finish_moves({dest}, later)
    assert moved.read_bytes() == b"a"
    assert list((tmp_path / "sorted").iterdir()) == []


def test_a_first_name_given_to_another_file_meanwhile_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    with fsops.OldNames() as later:
        moved = fsops.move_no_replace(tmp_path / "a.jpg", tmp_path / "originals", "A.jpg", later)
        os.unlink(tmp_path / "a.jpg")
        (tmp_path / "a.jpg").write_bytes(b"someone else's")
        fsops.finish_moves({moved.parent}, later)
    assert (tmp_path / "a.jpg").read_bytes() == b"someone else's"
    assert moved.read_bytes() == b"a"


def test_a_move_takes_the_next_free_name_and_never_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "originals"
    dest.mkdir()
    (dest / "A.jpg").write_bytes(b"taken")
    (tmp_path / "a.jpg").write_bytes(b"a")
    moved = fsops.move_no_replace(tmp_path / "a.jpg", dest, "A.jpg")
    assert moved.name == "A~2.jpg" and moved.read_bytes() == b"a"
    assert (dest / "A.jpg").read_bytes() == b"taken"
    assert not (tmp_path / "a.jpg").exists()


def test_a_move_stopped_half_way_is_finished(tmp_path: Path) -> None:
    dest = tmp_path / "originals"
    dest.mkdir()
    (tmp_path / "a.jpg").write_bytes(b"a")
    os.link(tmp_path / "a.jpg", dest / "A.jpg")  # the new name made, the first not yet removed
    assert fsops.move_no_replace(tmp_path / "a.jpg", dest, "A.jpg") == dest / "A.jpg"
    assert not (tmp_path / "a.jpg").exists()
    assert [p.name for p in dest.iterdir()] == ["A.jpg"]


def test_rename_no_replace_refuses_a_taken_name(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "b.png").write_bytes(b"b")
    with pytest.raises(FileExistsError):
        fsops.rename_no_replace(tmp_path / "a.png", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == b"a" and (tmp_path / "b.png").read_bytes() == b"b"
    fsops.rename_no_replace(tmp_path / "a.png", tmp_path / "c.png")
    assert not (tmp_path / "a.png").exists() and (tmp_path / "c.png").read_bytes() == b"a"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
def test_a_batch_holds_one_descriptor_per_folder_not_per_file(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(200):
        (inbox / f"{i}.jpg").write_bytes(b"x%d" % i)
    before = len(os.listdir("/proc/self/fd"))
    with fsops.OldNames() as later:
        for i in range(200):
            fsops.move_no_replace(inbox / f"{i}.jpg", tmp_path / "originals", f"{i}.jpg", later)
        held = len(os.listdir("/proc/self/fd")) - before
        fsops.finish_moves({tmp_path / "originals"}, later)
    assert held <= 1
    assert len(os.listdir("/proc/self/fd")) == before
    assert list(inbox.iterdir()) == [] and len(list((tmp_path / "originals").iterdir())) == 200


def test_nothing_is_there_where_a_folder_on_the_way_became_a_file(tmp_path: Path) -> None:
    (tmp_path / "drop").write_bytes(b"a file where the folder was")  # the folder replaced by a file
    assert fsops.identity(tmp_path / "drop" / "a.png") is None  # not NotADirectoryError
    (tmp_path / "a.png").write_bytes(b"x")
    assert fsops.identity(tmp_path / "a.png") is not None


def test_a_file_is_removed_only_while_its_name_holds_the_file_that_was_read(tmp_path: Path) -> None:
    ours = tmp_path / "x.png"
    ours.write_bytes(b"watcherd's own")
    _, held = fsops.read_held(ours, 1 << 20)
    os.rename(ours, tmp_path / "moved.png")  # ours dragged away, and another file dropped under its name
    ours.write_bytes(b"someone else's")
    assert not fsops.remove_same(ours, held)
    assert ours.read_bytes() == b"someone else's"
    assert fsops.remove_same(tmp_path / "moved.png", held)  # ours, wherever its name went
    assert not (tmp_path / "moved.png").exists()
    assert not fsops.remove_same(tmp_path / "gone.png", held)


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 4096])
def test_a_held_read_gives_the_file_up_to_one_byte_past_the_limit(tmp_path: Path, size: int) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    data, st = fsops.read_held(path, 10)
    assert data == path.read_bytes()[:11] and st.st_size == size


def test_a_starting_writer_removes_leftover_temporaries_but_not_a_request_being_written(cfg: Config) -> None:
    """A command writes its request without the lease, on any host: a daemon starting while it
    does must not take its temporary for a leftover (the command's rename then failed, exit 70,
    in the interleavings). One an hour old is a dead command's, and goes. An answer's, however
    young, is a killed writer's (only the lease holder writes answers), and goes at once: it
    stayed an hour, reported by ``check``, in the interleavings (seed 603)."""
    import time

    from watcherd.core.filters import TEMP_PREFIX
    from watcherd.fs.layout import ANSWER_TEMP_PREFIX, REQUEST_LEFTOVER_AGE, remove_leftovers, requests_dir

    requests = requests_dir(cfg)
    answer = write(requests / f"{ANSWER_TEMP_PREFIX}abc", b"{")
    being_written = write(requests / f"{TEMP_PREFIX}abc", b"{")
    dead = write(requests / f"{TEMP_PREFIX}def", b"{")
    old = time.time() - REQUEST_LEFTOVER_AGE - 1
    os.utime(dead, (old, old))
    export_tmp = write(cfg.state_dir / f"{TEMP_PREFIX}export.json", b"{")
    original_tmp = write(cfg.originals_dir / f"{TEMP_PREFIX}1234-x.jpg", b"x")
    kept = write(requests / "0001-abc.request.json", b"{}")

    remove_leftovers(cfg)

    assert being_written.exists() and kept.exists()
    assert not dead.exists() and not export_tmp.exists() and not original_tmp.exists() and not answer.exists()
