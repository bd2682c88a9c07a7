"""SIGKILL the daemon at random moments while it ingests; nothing may be lost or half-done.

CI runs a few trials; set WATCHERD_CRASH_TRIALS (and WATCHERD_CRASH_IMAGES) for more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import encode, running_daemon, scene, table, wait_for, write, xmp_packet
from tests.invariants import check_library

TRIALS = int(os.environ.get("WATCHERD_CRASH_TRIALS", "4"))
IMAGES = int(os.environ.get("WATCHERD_CRASH_IMAGES", "120"))


def corpus(n: int) -> dict[str, bytes]:
    """Mostly distinct photos, plus exact and perceptual duplicates and a bad file."""
    files: dict[str, bytes] = {}
    for i in range(n):
        im = scene((240 + (i % 5) * 16, 180), seed=1000 + i)
        files[f"img{i:03d}.jpg"] = encode(im, "JPEG")
        if i % 20 == 0:
            files[f"img{i:03d}-copy.jpg"] = files[f"img{i:03d}.jpg"]
            files[f"img{i:03d}.png"] = encode(im, "PNG")
    files["broken.jpg"] = b"definitely not a jpeg"
    return files


def layout(name: str, i: int) -> str:
    return f"{['', 'cats/', 'dogs/', 'cats/orange/'][i % 4]}{name}"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_at_a_random_moment_loses_nothing(tmp_path: Path, trial: int) -> None:
    rng = random.Random(trial)
    root = tmp_path / "lib"
    root.mkdir()
    conf = tmp_path / "w.yaml"
    conf.write_text("settle: 0.05\nheartbeat: 0.5\nstale_after: 2\n")
    files = corpus(IMAGES)
    # Some photos arrive with a sidecar beside them (written first, as a copy would).
    label = '<xmp:Label xmlns:xmp="http://ns.adobe.com/xap/1.0/">only-in-{}</xmp:Label>'
    sidecars = {
        f"{name}.xmp": xmp_packet((f"kw-{name}",), body=label.format(name))
        for name in list(files)[3::10]
        if name.endswith(".jpg")
    }
    with running_daemon(root, conf) as daemon:
        for i, (name, data) in enumerate(files.items()):
            if f"{name}.xmp" in sidecars:
                write(root / "thumbs" / layout(f"{name}.xmp", i), sidecars[f"{name}.xmp"])
            write(root / "thumbs" / layout(name, i), data)
        # Kill once some work is done but (usually) not all of it: the power cut comes
        # at a random moment, which is what this sleep chooses.
        wait_for(lambda: len(table(root / ".watcherd" / "catalog.sqlite", "images")) >= 1, what="first ingest")
        time.sleep(rng.uniform(0.0, 1.5))
        daemon.stop(signal.SIGKILL)
    at_kill = len(table(root / ".watcherd" / "catalog.sqlite", "images"))
    print(f"trial {trial}: killed after {at_kill} records")

    done = subprocess.run(
        [sys.executable, "-m", "watcherd", "scan", str(root), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    problems = check_library(root, {**files, **sidecars}, bad={"broken.jpg"}, tagfiles=True)
    assert problems == [], "\n".join(problems[:20])
    images = table(root / ".watcherd" / "catalog.sqlite", "images")
    collisions = table(root / ".watcherd" / "catalog.sqlite", "collisions")
    # Every good file became exactly one image or one collision newcomer.
    assert len(images) + len(collisions) == len(files) - 1
    assert len(collisions) >= len(files) - 1 - IMAGES  # at least the copies and PNG twins
