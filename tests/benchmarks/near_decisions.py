"""What a new file pays to be checked against the near groups kept so far (``near_holding``).

Every file ingest has not seen by name asks whether a near keep decision merged these
very bytes; this times that question (a miss, the usual answer) with N decisions stored.

    .venv/bin/python -m tests.benchmarks.near_decisions
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.core.collisionrecords import Decision, Verdict
from watcherd.core.nearpairs import Merged, NearRecord
from watcherd.core.records import ImageRecord, State


def holding_miss(n: int, repeat: int = 200) -> float:
    """Seconds per ``near_holding`` miss with ``n`` near keep decisions in the catalog."""
    with tempfile.TemporaryDirectory() as folder:
        catalog = Catalog(Path(folder) / "catalog.sqlite")
        try:
            with catalog.transaction():
                for i in range(n):
                    name = f"64x48_{i:016x}_.png"
                    merged = ImageRecord(
                        name, f"{i:016x}", 64, 48, f"thumbs/cats/{name}", State.PRESENT, "t", "t",
                        sha256=hashlib.sha256(str(i).encode()).hexdigest(), tags=["cats", "64x48"],
                        original_filename=f"IMG_{i}.jpg", original=f"originals/{name[:-4]}.jpg",
                    )  # fmt: skip
                    decision = Decision(Verdict.KEEP_EXISTING, "t", image=f"kept{i}.png")
                    catalog.put_near_decision(NearRecord(f"kept{i}.png+{name}", decision, [Merged(merged.to_json())]))
            miss = hashlib.sha256(b"never merged").hexdigest()
            start = time.perf_counter()
            for _ in range(repeat):
                assert catalog.near_holding(miss) is None
            return (time.perf_counter() - start) / repeat
        finally:
            catalog.close()


def main() -> None:
    """Print the time per check at a few sizes."""
    for n in (0, 1_000, 10_000):
        print(f"near_holding miss, {n:>6,} near keep decisions: {holding_miss(n) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
