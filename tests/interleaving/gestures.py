"""The steps of a person in the file manager (``GESTURES``): drops (some downloaded as a
``.part`` renamed into place), the same bytes or an original dropped again, thumbnail
renames, duplicates, copies, moves and deletions, folder renames and moves, ``thumbs/`` put
aside, settle gestures in ``_collisions/``; and the pauses and looks between them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.helpers import encode
from tests.interleaving.library import Library
from tests.interleaving.pictures import pick, picture, suffix_of, variant_bytes
from tests.interleaving.script import IDLE_WAIT
from watcherd.core.filters import TEMP_PREFIX


class GestureSteps(Library):
    """What a person does in the file manager, and the pauses and looks between."""

    def drop(self, a: dict[str, Any]) -> str:
        base, variant, via = int(a["base"]), str(a["variant"]), str(a["via"])
        folder = pick(self.folders(), int(a["folder"]))
        if a.get("new_folder"):
            folder = folder / self.fresh_name("n")
            folder.mkdir(parents=True)
        data = variant_bytes(self.script.world, base, variant)
        target = folder / self.fresh_name("img", suffix_of(variant))
        if via == "direct":
            with open(target, "xb") as out:
                out.write(data)
            self.remember(self.rel(target), data)
            return f"write {self.rel(target)}"
        part = target.with_name(("." if via == "hidden-part" else "") + target.name + ".part")
        with open(part, "xb") as out:  # a download: half, a moment, the rest, then renamed into place
            out.write(data[: len(data) // 2])
            out.flush()
            time.sleep(0.05)
            out.write(data[len(data) // 2 :])
        self.remember(self.rel(part), data)
        os.rename(part, target)
        return f"download {self.rel(part)} -> {target.name}"

    def drop_again(self, a: dict[str, Any]) -> str:
        dropped = sorted(self.inputs.values())
        if not dropped:
            return "nothing dropped yet"
        first, data = pick(dropped, int(a["input"]))
        suffix = Path(first.removesuffix(".part")).suffix  # a download's bytes under the name it got
        target = pick(self.folders(), int(a["folder"])) / self.fresh_name("same", suffix)
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {first} {self.rel(target)} (its bytes again)"

    def burst(self, a: dict[str, Any], folders: list[Path] | None = None) -> str:
        """``count`` pictures never dropped before, spread over the folders."""
        folders = folders or self.folders()
        done = []
        for i in range(int(a["count"])):
            data = encode(picture(self.script.world, 100 + self.counter))
            target = pick(folders, int(a["folder"]) + i) / self.fresh_name("new", ".jpg")
            with open(target, "xb") as out:
                out.write(data)
            self.remember(self.rel(target), data)
            done.append(self.rel(target))
        return f"write {' '.join(done)}"

    def redrop(self, a: dict[str, Any]) -> str:
        # A person drops a photo again, not the sidecar watcherd keeps beside it (a lone
        # ``.xmp`` in the tree is nobody's photo and stays where it is dropped), nor a hidden
        # file watcherd is writing that moment (a copy of half of it is no image).
        originals = sorted(
            p
            for p in (self.root / "originals").rglob("*")
            if p.is_file() and p.suffix != ".xmp" and not p.name.startswith(TEMP_PREFIX)
        )
        source = pick(originals, int(a["original"]))
        if source is None:
            return "no original yet"
        target = pick(self.folders(), int(a["folder"])) / self.fresh_name("again", source.suffix)
        data = source.read_bytes()
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {self.rel(source)} {self.rel(target)}"

    def rename(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        style = str(a["style"])
        name = f"{thumb.stem} (copy).png" if style == "copy-name" else self.fresh_name("my ", ".png")
        target = thumb.with_name(name)
        if target.exists():
            return f"{target.name} is taken"
        os.rename(thumb, target)
        return f"mv {self.rel(thumb)} {target.name}"

    def duplicate(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        target = thumb.with_name(f"{thumb.stem} (copy).png")
        if target.exists():
            return f"{target.name} is taken"
        data = thumb.read_bytes()
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {self.rel(thumb)} {target.name}"

    def _into_folder(self, a: dict[str, Any], *, copy: bool) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        folder = pick(self.folders(), int(a["folder"]))
        target = folder / thumb.name
        if folder == thumb.parent or target.exists():
            return f"{self.rel(target)} is there already"
        if copy:
            data = thumb.read_bytes()
            with open(target, "xb") as out:
                out.write(data)
            return f"cp {self.rel(thumb)} {self.rel(folder)}/"
        os.rename(thumb, target)
        return f"mv {self.rel(thumb)} {self.rel(folder)}/"

    def copy(self, a: dict[str, Any]) -> str:
        return self._into_folder(a, copy=True)

    def move(self, a: dict[str, Any]) -> str:
        return self._into_folder(a, copy=False)

    def delete(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        thumb.unlink()
        return f"rm {self.rel(thumb)}"

    def rename_folder(self, a: dict[str, Any]) -> str:
        folder = pick(self.folders()[1:], int(a["folder"]))
        if folder is None:
            return "no folder"
        target = folder.with_name(self.fresh_name("r"))
        os.rename(folder, target)
        self.tags_seen.add(target.name)
        return f"mv {self.rel(folder)} {self.rel(target)}"

    def put_aside(self, a: dict[str, Any]) -> str:
        if int(a["roll"]) != 0:  # rare: the whole tree and its collisions leave at once
            return "thumbs/ stays"
        aside = self.root / self.fresh_name("thumbs aside ")
        os.rename(self.thumbs, aside)
        self.thumbs.mkdir()
        return f"mv thumbs '{aside.name}'; mkdir thumbs"

    def move_folder(self, a: dict[str, Any]) -> str:
        folder = pick(self.folders()[1:], int(a["folder"]))
        if folder is None:
            return "no folder"
        into = pick([f for f in self.folders() if f != folder and folder not in f.parents], int(a["into"]))
        if into is None or into == folder.parent:
            return f"{self.rel(folder)} stays"
        target = into / folder.name
        if target.exists():
            target = into / self.fresh_name(folder.name + "-")
        os.rename(folder, target)
        return f"mv {self.rel(folder)} {self.rel(target)}"

    def gesture(self, a: dict[str, Any]) -> str:
        newcomer = pick(self.newcomers(), int(a["newcomer"]))
        if newcomer is None:
            return "no newcomer in _collisions"
        if a["decision"] == "keep-existing":
            newcomer.unlink()
            return f"rm {self.rel(newcomer)}"
        folder = pick(self.folders(), int(a["folder"]))
        target = folder / newcomer.name
        if target.exists():
            return f"{self.rel(target)} is there already"
        os.rename(newcomer, target)
        return f"mv {self.rel(newcomer)} {self.rel(folder)}/"

    def pause(self, a: dict[str, Any]) -> str:
        time.sleep(int(a["ms"]) / 1000)
        return ""

    def look(self, a: dict[str, Any]) -> str:
        start = time.monotonic()
        while not self.idle():
            if time.monotonic() - start > IDLE_WAIT:
                return f"still busy after {IDLE_WAIT:.0f} s"
            self.daemon_alive()
            time.sleep(0.05)
        return f"caught up in {time.monotonic() - start:.1f} s"
