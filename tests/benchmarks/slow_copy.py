"""A big image copied into the tree in slow chunks must be decoded once, after the last byte.

    python -m tests.benchmarks.slow_copy --megabytes 200 --seconds 20

Writes an uncompressed BMP of about the given size in chunks spread over the given
time, with the daemon running at debug level, then counts how often the daemon tried
to read the file (a try before the last byte shows as a 'deferring' line).
"""

from __future__ import annotations

import argparse
import io
import math
import re
import tempfile
import time
from pathlib import Path

from tests.helpers import running_daemon, scene, table, wait_for


def big_bmp(megabytes: int) -> bytes:
    side = int(math.sqrt(megabytes * 1024 * 1024 / 3))
    im = scene((512, 512), seed=7).resize((side, side))
    buf = io.BytesIO()
    im.save(buf, format="BMP")
    return buf.getvalue()


def run(megabytes: int, seconds: float, workdir: Path) -> dict[str, object]:
    root = workdir / "lib"
    (root / "thumbs").mkdir(parents=True)
    conf = workdir / "w.yaml"
    conf.write_text("settle: 0.5\n")
    data = big_bmp(megabytes)
    log_path = workdir / "daemon.log"
    with running_daemon(root, conf, log_path, "-v"):
        chunks = max(1, int(seconds * 10))
        step = len(data) // chunks + 1
        started = time.monotonic()
        with open(root / "thumbs" / "big.bmp", "wb") as fh:
            for i in range(chunks):
                fh.write(data[i * step : (i + 1) * step])
                fh.flush()
                time.sleep(max(0.0, started + (i + 1) * seconds / chunks - time.monotonic()))
        last_byte = time.monotonic()
        db = root / ".watcherd" / "catalog.sqlite"
        wait_for(lambda: [r for r in table(db, "images") if not r["moving_from"]], timeout=300, what="ingest")
        latency = time.monotonic() - last_byte
    log = log_path.read_text(errors="replace")
    return {
        "megabytes": round(len(data) / 1e6, 1),
        "copy_seconds": seconds,
        "ingested": len(re.findall(r"ingested thumbs/big\.bmp", log)),
        "early_reads": len(re.findall(r"deferring thumbs/big\.bmp", log)),
        "errors": len(re.findall(r"cannot ingest thumbs/big\.bmp", log)),
        "seconds_after_last_byte": round(latency, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(run(args.megabytes, args.seconds, Path(tmp)))


if __name__ == "__main__":
    main()
