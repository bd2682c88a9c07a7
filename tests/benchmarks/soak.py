"""Soak: drop, copy, move, rename folders and delete thumbnails for a while against a
running daemon, then check that catalog and tree agree and nothing was lost.

    python -m tests.benchmarks.soak --seconds 300

CI runs a short version (tests/e2e/test_soak.py). Prints operations per kind, files
handled per second and the time the daemon needed to catch up after the last event.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.helpers import encode, running_daemon, scene, table, wait_for
from tests.invariants import check_library
from watcherd.core.naming import parse_canonical

FOLDERS = ["cats", "dogs", "cats/orange", "2024", "beach", "family/kids"]


def _thumbs(thumbs: Path) -> list[Path]:
    return [p for p in thumbs.rglob("*_.png") if "_collisions" not in p.parts and parse_canonical(p.name)]


def _doubled(db: Path, dropped: dict[str, bytes]) -> str:
    """The bytes recorded more often than they were dropped, with their records."""
    dropped_count = Counter(hashlib.sha256(data).hexdigest() for data in dropped.values())
    records = [(r["sha256"], r["name"], r.get("original")) for r in table(db, "images")]
    records += [(c["newcomer"]["sha256"], c["id"], c["newcomer"].get("original")) for c in table(db, "collisions")]
    counted = Counter(sha for sha, _, _ in records)
    return "; ".join(
        f"{sha[:12]} dropped {dropped_count[sha]}x, recorded as {[(n, o) for s, n, o in records if s == sha]}"
        for sha in counted
        if counted[sha] > dropped_count[sha]
    )


def run(seconds: float, workdir: Path, seed: int = 0) -> dict[str, object]:
    """Run the soak; return the figures (and raise AssertionError on a broken promise)."""
    rng = random.Random(seed)
    root = workdir / "lib"
    thumbs = root / "thumbs"
    staging = workdir / "staging"
    for d in (thumbs, staging):
        d.mkdir(parents=True)
    conf = workdir / "w.yaml"
    conf.write_text("settle: 0.2\nrescan_interval: 20\n")
    dropped: dict[str, bytes] = {}
    ops: Counter[str] = Counter()
    n = 0
    with running_daemon(root, conf, workdir / "daemon.log") as daemon:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            kind = rng.choices(["drop", "copy", "move", "rename_dir", "delete", "dupe"], [40, 15, 25, 3, 7, 10])[0]
            existing = _thumbs(thumbs)
            if kind in ("drop", "copy") or not existing:
                n += 1
                name = f"img{n:05d}.{'png' if n % 7 == 0 else 'jpg'}"
                data = encode(scene((200 + n % 9 * 8, 150), seed=seed * 100_000 + n), "PNG" if n % 7 == 0 else "JPEG")
                dest = thumbs / rng.choice(["", *FOLDERS]) / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if kind == "copy":  # copy from elsewhere, as a file manager would
                    (staging / name).write_bytes(data)
                    shutil.copy2(staging / name, dest)
                else:
                    dest.write_bytes(data)
                dropped[f"{name}"] = data
                ops[kind] += 1
            elif kind == "dupe":
                name, data = rng.choice(list(dropped.items()))
                dest = thumbs / rng.choice(FOLDERS) / f"again-{ops['dupe']}-{name}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                dropped[dest.name] = data
                ops[kind] += 1
            elif kind == "move":
                src = rng.choice(existing)
                folder = thumbs / rng.choice(["", *FOLDERS])
                folder.mkdir(parents=True, exist_ok=True)
                if not (folder / src.name).exists():
                    os.rename(src, folder / src.name)
                    ops[kind] += 1
            elif kind == "rename_dir":
                dirs = [d for d in thumbs.iterdir() if d.is_dir() and d.name != "_collisions"]
                if dirs:
                    d = rng.choice(dirs)
                    new = thumbs / f"{d.name.split('-')[0]}-{ops['rename_dir']}"
                    if not new.exists():
                        os.rename(d, new)
                        ops[kind] += 1
            elif kind == "delete":
                rng.choice(existing).unlink()
                ops[kind] += 1
            time.sleep(rng.uniform(0, 0.02))
        last_event = time.monotonic()
        db = root / ".watcherd" / "catalog.sqlite"

        again = root / "originals" / "_again"

        def accounted() -> int:
            """Each dropped file is an image, a collision, or the original of a missing image
            dropped again (kept in originals/_again/ as the image comes back)."""
            returned = len(list(again.iterdir())) if again.is_dir() else 0
            return len(table(db, "images")) + len(table(db, "collisions")) + returned

        def settled() -> bool:
            try:
                problems = check_library(root, dropped)
            except OSError:  # a file moved while we looked: the daemon is still at work
                return False
            counted = accounted()
            if counted > len(dropped):  # records are never removed: this cannot get better
                raise AssertionError(f"{counted} records for {len(dropped)} files: {_doubled(db, dropped)}")
            return not problems and counted == len(dropped)

        def wait_settled() -> None:
            try:
                wait_for(settled, timeout=120, interval=0.5, what="catalog and tree to agree")
            except AssertionError:
                problems = check_library(root, dropped)
                counted = accounted()
                raise AssertionError(
                    f"not settled: {counted} records for {len(dropped)} files; " + "; ".join(problems[:10])
                ) from None

        wait_settled()
        catch_up = time.monotonic() - last_event
        # Agreeing is not being idle: a thumbnail moved away and back agrees with its
        # record while both moves still wait in the daemon's queue, and stopping then
        # leaves them for the next start. A sentinel dropped now is filed only after
        # every earlier event has been handled.
        sentinel = encode(scene((180, 120), seed=seed * 100_000 + 99_999), "JPEG")
        (thumbs / "sentinel.jpg").write_bytes(sentinel)
        dropped["sentinel.jpg"] = sentinel
        wait_settled()
        assert daemon.proc.poll() is None, "the daemon died"
        code = daemon.stop()
    assert code == 0, f"daemon exited {code}"
    problems = check_library(root, dropped)
    assert not problems, "\n".join(problems[:20])
    files = sum(ops.values())
    return {
        "seconds": seconds,
        "operations": dict(ops),
        "files_dropped": len(dropped),
        "ops_per_second": round(files / seconds, 1),
        "catch_up_seconds": round(catch_up, 2),
        "images": len(table(db, "images")),
        "collisions": len(table(db, "collisions")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.seconds, Path(tmp), args.seed), indent=2))


if __name__ == "__main__":
    main()
