"""Drop-to-thumbnail latency through a Samba share, beside the local disk's, in one run.

    python -m tests.benchmarks.share_latency --drops 8 --settle 0.5

Needs what tests/e2e/test_share.py needs (root, smbd, rclone, fuse3). Three set-ups,
the same photos and the same ``settle`` in each:

- ``local``: the daemon (inotify) on a local folder; the photo is copied there.
- ``server daemon, drop from host B``: the daemon (inotify) on the server's folder; the
  photo is copied through host B's rclone mount; the thumbnail is looked for through
  that mount, as the person on host B sees it.
- ``daemon on host A's mount, drop from host B``: the share config (polling observer,
  catalog on A's disk); copied and looked for through host B's mount.

The time runs from the drop's close (the file manager's copy done) until the thumbnail
exists where that person looks, polled every 10 ms. Drops are one at a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import canonical_files, encode, running_daemon, scene
from tests.share_support import HostDaemon, missing_pieces, samba_share, share_config

CHUNK = 64 * 1024


def _copy_in(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:
        for i in range(0, len(data), CHUNK):
            out.write(data[i : i + CHUNK])
    os.utime(path, ns=(1_500_000_000_000_000_000,) * 2)


def _drops(drop_in: Path, look_in: Path, photos: list[bytes], prefix: str, timeout: float = 60.0) -> list[float]:
    """Seconds from each drop's close (a new folder each) until its thumbnail shows in ``look_in``."""
    seconds = []
    for i, data in enumerate(photos):
        folder = f"{prefix}{i:03d}"
        _copy_in(drop_in / "thumbs" / folder / "photo.jpg", data)
        start = time.monotonic()
        while not canonical_files(look_in / "thumbs" / folder):
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"no thumbnail for drop {i} after {timeout}s")
            time.sleep(0.01)
        seconds.append(time.monotonic() - start)
    return seconds


def _row(label: str, seconds: list[float]) -> str:
    return f"| {label} | {statistics.median(seconds) * 1000:.0f} ms | {max(seconds) * 1000:.0f} ms | {len(seconds)} |"


def run(drops: int, settle: float, workdir: Path) -> list[str]:
    """The three rows of the README's table."""
    photos = [encode(scene((1600, 1200), seed=300 + i)) for i in range(drops)]
    rows = ["| set-up | median | max | drops |", "|---|---|---|---|"]

    local = workdir / "local"
    (local / "thumbs").mkdir(parents=True)
    conf = workdir / "local.yaml"
    conf.write_text(f"settle: {settle}\n")
    with running_daemon(local, conf, workdir / "local.log"):
        rows.append(_row("local disk (inotify)", _drops(local, local, photos, "local")))

    with samba_share(workdir / "share") as share:
        conf = workdir / "server.yaml"
        conf.write_text(f"settle: {settle}\n")
        with running_daemon(share.folder, conf, workdir / "server.log"):
            seconds = _drops(share.mount_b.point, share.mount_b.point, photos, "server")
        rows.append(_row("server's daemon (inotify), drop and look through host B's mount", seconds))
        a_conf = share_config(workdir / "a.yaml", workdir / "a.sqlite", settle=settle)
        daemon = HostDaemon(share.a, share.mount_a.point, a_conf, workdir / "a.log")
        try:
            daemon.wait_started()
            others = [encode(scene((1600, 1200), seed=400 + i)) for i in range(drops)]  # new bytes: no collisions
            seconds = _drops(share.mount_b.point, share.mount_b.point, others, "client")
        finally:
            daemon.stop()
        rows.append(_row("host A's daemon on its mount (polling), drop and look through host B's mount", seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=8)
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    why = missing_pieces()
    if why is not None:
        raise SystemExit(f"cannot run: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(run(args.drops, args.settle, Path(tmp))))


if __name__ == "__main__":
    main()
