"""The pictures a world drops (each base picture and its look-alikes, as bytes), and the
small helpers the steps share: a pick into what is there, a free port, snapshots of the tree.
"""

from __future__ import annotations

import hashlib
import socket
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance

from tests.helpers import encode, scene

# --- the pictures -----------------------------------------------------------------------


def picture(world: int, base: int) -> Image.Image:
    """Picture ``base`` of a world: distinct pictures for distinct bases."""
    return scene((176 + 8 * (base % 3), 132), seed=world * 1000 + base)


@cache
def variant_bytes(world: int, base: int, variant: str) -> bytes:
    """Picture ``base`` as ``variant``: the same picture re-encoded, brightened or resized (look-alikes)."""
    im = picture(world, base)
    if variant == "png":
        return encode(im, "PNG")
    if variant == "q70":
        return encode(im, "JPEG", quality=70)
    if variant == "bright":
        return encode(ImageEnhance.Brightness(im).enhance(1.08), "JPEG")
    if variant == "smaller":
        return encode(im.resize((im.width - 4, im.height - 3)), "JPEG")
    return encode(im, "JPEG")


def suffix_of(variant: str) -> str:
    return ".png" if variant == "png" else ".jpg"


# --- picks and snapshots ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick(items: list[Any], index: int) -> Any:
    """The item ``index`` points at (modulo), or None when there is none."""
    return items[index % len(items)] if items else None


def tree_snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file of the library outside ``.watcherd/``: path -> (size, sha256)."""
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] == ".watcherd" or not p.is_file():
            continue
        data = p.read_bytes()
        out[rel.as_posix()] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def snapshot_diff(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> str:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"gone {gone[:5]}, new {new[:5]}, changed {changed[:5]}"
