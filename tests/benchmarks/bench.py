"""Speed figures, each beside a baseline measured in the same run.

    python -m tests.benchmarks.bench                 # the README table's sizes
    python -m tests.benchmarks.bench --smoke         # tiny sizes, seconds (what CI runs)

Corpora are generated here, deterministically; nothing is downloaded. Prints one row
per figure: watcherd's number, the baseline's, their ratio, and the issue's target.
"""

from __future__ import annotations

import argparse
import os
import platform

from tests.benchmarks.bench_ingest import burst, ingest, latency
from tests.benchmarks.bench_library import (
    adoption,
    cli_latency,
    daemon_memory,
    folder_rename,
    reconcile_startup,
    tagfiles_cost,
)
from tests.benchmarks.bench_near import near_query, similar_at_scale
from tests.benchmarks.timing import Row

__all__ = [
    "Row",
    "adoption",
    "burst",
    "cli_latency",
    "daemon_memory",
    "folder_rename",
    "ingest",
    "latency",
    "near_query",
    "reconcile_startup",
    "similar_at_scale",
    "tagfiles_cost",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), as in CI")
    parser.add_argument("--large", action="store_true", help="also 1M-image figures (builds a 1M catalog: ~10 min)")
    args = parser.parse_args()
    if args.smoke:
        rows = near_query(20_000, 20) + ingest(2, (600, 400)) + cli_latency(500) + reconcile_startup(500)
        rows += similar_at_scale(20_000, 500, 20)
        rows += folder_rename(200) + latency(3, 0.2) + burst(200) + adoption(300)
    else:
        rows = near_query(1_000_000, 200) + near_query(10_000_000, 50) + ingest(12, (3000, 2000))
        rows += cli_latency(100_000) + reconcile_startup(100_000) + folder_rename(10_000) + latency(15, 0.5)
        rows += burst(20_000) + adoption(100_000)
        rows += similar_at_scale(1_000_000, 20_000, 200) + similar_at_scale(30_000_000, 20_000, 200)
        if args.large:
            rows += daemon_memory(1_000_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| figure | watcherd | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
