"""Hash quality: how often near-duplicates match, and unrelated pictures do not, by distance.

    python -m tests.benchmarks.quality                  # the README table (150 photos)
    python -m tests.benchmarks.quality --photos 20      # a quick look

Each generated photo gets seven near-duplicates (tests.benchmarks.corpus.VARIANTS).
Every picture is hashed exactly as ingest names it (decode, EXIF orientation,
normalization, hash). Recall at distance d is the share of (photo, variant) pairs
within d bits; the false-positive rate is the share of pairs of different photos
within d bits. The default ``similar`` distance is the largest d whose false-positive
rate stays at or under ``--max-fpr`` (or a smaller d that gives the same answers).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
from collections.abc import Callable

import numpy as np

from tests.benchmarks.corpus import VARIANTS, jpeg, photo
from watcherd.core.config import ALLOWED_FORMATS
from watcherd.decode import imaging

MAX_PIXELS = 89_478_485
DISTANCES = range(13)

Hasher = Callable[[bytes], int]


def hasher(algorithm: str, fast: bool = False) -> Hasher:
    """Bytes to the 64-bit hash ingest would give them, for one algorithm and mode."""

    def run(data: bytes) -> int:
        decoded = imaging.decode(data, ALLOWED_FORMATS, MAX_PIXELS, imaging.FAST_SIDE if fast else None)
        norm = imaging.normalize(decoded.image)
        return int(imaging.perceptual_hash(norm, algorithm, 8, fast=fast), 16)

    return run


HASHERS: dict[str, Hasher] = {
    "whash": hasher("whash"),
    "whash, decode: fast": hasher("whash", fast=True),
    "phash": hasher("phash"),
    "dhash": hasher("dhash"),
    "average_hash": hasher("average_hash"),
}


@dataclasses.dataclass
class Distances:
    """Hamming distances of one hasher: photo vs each variant, photo vs photo, and each variant's kind."""

    near: list[int]
    far: list[int]
    kinds: list[str]


def measure(photos: int, size: tuple[int, int]) -> dict[str, Distances]:
    """Distances per algorithm: ``near`` (photo vs each variant) and ``far`` (photo vs photo)."""
    rng = np.random.default_rng(0)
    originals: dict[str, list[int]] = {name: [] for name in HASHERS}
    near: dict[str, list[int]] = {name: [] for name in HASHERS}
    every: dict[str, list[int]] = {name: [] for name in HASHERS}  # every picture's hash, in one order
    kinds: list[str] = []
    for seed in range(photos):
        im = photo(size, seed)
        base = jpeg(im)
        variants = {kind: make(im, rng) for kind, make in VARIANTS.items()}
        for name, fn in HASHERS.items():
            h = fn(base)
            hashes = [fn(data) for data in variants.values()]
            originals[name].append(h)
            every[name].extend([h, *hashes])
            near[name].extend((h ^ v).bit_count() for v in hashes)
        kinds.extend(variants)
    fast_vs_reference = [(a ^ b).bit_count() for a, b in zip(every["whash"], every["whash, decode: fast"], strict=True)]
    far = {
        name: [(a ^ b).bit_count() for a, b in itertools.combinations(hashes, 2)] for name, hashes in originals.items()
    }
    out = {name: Distances(near[name], far[name], kinds) for name in HASHERS}
    out["fast vs reference"] = Distances(fast_vs_reference, [], [])
    return out


def rates(distances: list[int], d: int) -> float:
    """Share of ``distances`` at most ``d``."""
    return sum(x <= d for x in distances) / len(distances)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=150, help="generated photos (default 150)")
    parser.add_argument("--max-fpr", type=float, default=0.0005, help="false-positive budget for the default distance")
    args = parser.parse_args()
    results = measure(args.photos, (1200, 800))
    bits = results.pop("fast vs reference").near
    far_pairs = len(next(iter(results.values())).far)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{args.photos} photos (1200x800 JPEG q90), {len(VARIANTS)} near-duplicates each, {far_pairs:,} unrelated pairs"
    )
    print()
    print("recall % / false-positive % at Hamming distance d")
    print("| d | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for d in DISTANCES:
        cells = [f"{100 * rates(r.near, d):.1f} / {100 * rates(r.far, d):.2f}" for r in results.values()]
        print(f"| {d} | " + " | ".join(cells) + " |")
    whash = results["whash"]
    chosen = max(d for d in DISTANCES if rates(whash.far, d) <= args.max_fpr)
    # whash sets exactly the blocks above the median, so bits mostly flip in pairs: an
    # odd distance often answers exactly like the even one below it; take the smaller.
    same = (rates(whash.near, chosen), rates(whash.far, chosen))
    while chosen > 0 and (rates(whash.near, chosen - 1), rates(whash.far, chosen - 1)) == same:
        chosen -= 1
    print()
    print(
        f"default distance for whash: {chosen} (the smallest d answering like the largest d "
        f"with false positives <= {100 * args.max_fpr:.2f}%)"
    )
    print()
    print(f"whash recall at d={chosen}, by kind of near-duplicate:")
    kinds = whash.kinds
    for kind in VARIANTS:
        ds = [x for x, k in zip(whash.near, kinds, strict=True) if k == kind]
        print(f"- {kind}: {100 * rates(ds, chosen):.0f}% (median distance {int(np.median(ds))}, max {max(ds)})")
    print()
    print(
        f"decode: fast vs reference whash, same picture ({len(bits)} pictures): "
        f"mean {np.mean(bits):.2f} bits, max {max(bits)} bits; identical for {100 * rates(bits, 0):.1f}%"
    )


if __name__ == "__main__":
    main()
