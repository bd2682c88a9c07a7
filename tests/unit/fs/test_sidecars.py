"""A dropped XMP sidecar follows its original, also when a move stopped half-way."""

from __future__ import annotations

import os
from pathlib import Path

from watcherd.fs import fsops, sidecars


def test_a_sidecar_follows_its_original(tmp_path: Path) -> None:
    (tmp_path / "thumbs").mkdir()
    (tmp_path / "thumbs" / "a.jpg.xmp").write_bytes(b"<x/>")
    went = sidecars.move_beside(tmp_path / "thumbs" / "a.jpg", tmp_path / "originals" / "N.jpg", stem_too=True)
    assert went == tmp_path / "originals" / "N.jpg.xmp" and went.read_bytes() == b"<x/>"
    assert not (tmp_path / "thumbs" / "a.jpg.xmp").exists()


def test_a_sidecar_move_stopped_between_its_two_names_is_finished(tmp_path: Path) -> None:
    """Linked at its new name, the old name not yet removed (a batch killed before ``finish_moves``):
    finishing the move removes the old name, which would otherwise stay in the tree for good once
    the sidecar at the new name is rewritten (a new file)."""
    thumbs, originals = tmp_path / "thumbs", tmp_path / "originals"
    thumbs.mkdir()
    originals.mkdir()
    (thumbs / "a.jpg.xmp").write_bytes(b"<x/>")
    os.link(thumbs / "a.jpg.xmp", originals / "N.jpg.xmp")
    with fsops.OldNames() as later:
        went = sidecars.move_beside(thumbs / "a.jpg", originals / "N.jpg", stem_too=True, later=later)
        fsops.finish_moves({originals}, later)
    assert went == originals / "N.jpg.xmp" and went.read_bytes() == b"<x/>"
    assert sorted(os.listdir(thumbs)) == [] and sorted(os.listdir(originals)) == ["N.jpg.xmp"]
    assert os.stat(went).st_nlink == 1
