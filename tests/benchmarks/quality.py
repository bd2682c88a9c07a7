"""Hash quality: how often near-duplicates match, and unrelated pictures do not, by distance.

    python -m tests.benchmarks.quality                  # the README table: real pictures, today vs new
    python -m tests.benchmarks.quality --photos 10      # a quicker look (fewer sample photos)
    python -m tests.benchmarks.quality --set generated  # the earlier table: generated photos only

The real-picture set (``tests.benchmarks.realpics``: Debian's wallpapers and the sample
photos) gets the edits of ``realpics.EDITS``; every picture is rendered exactly as
ingest does (``imaging.render``: the name's whash and the thumbnail's window hashes).
"Today" is whash alone within d bits; "new" is what ``similar`` and ``dupes --near``
decide now (``crops.match``: whash within d confirmed by the whole-picture window
hash, or a window match within ``crops.CROP_DISTANCE``). A false positive is a pair of
pictures made from different sources that matches either way round.

With ``--set generated``, each generated photo gets seven near-duplicates (tests.benchmarks.corpus.VARIANTS).
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
from numpy.typing import NDArray

from tests.benchmarks import realpics
from tests.benchmarks.corpus import VARIANTS, jpeg, photo
from watcherd.core import crops
from watcherd.core.config import ALLOWED_FORMATS
from watcherd.decode import imaging, rendered
from watcherd.decode.rendered import RenderSpec

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


@dataclasses.dataclass
class Rendered:
    """One picture of the real set as ingest renders it."""

    source: int
    kind: str  # "original" or the edit's name
    hash: int
    windows: list[int]


def render_real(photos: int, seed: int = 0) -> list[Rendered]:
    """Every picture of the real set and its edits, rendered as ingest does (low-information sources left out)."""
    realpics.install()
    spec = RenderSpec(ALLOWED_FORMATS, MAX_PIXELS, "#ffffff", "whash", 8, 64)
    rng = np.random.default_rng(seed)
    out: list[Rendered] = []

    def one(i: int, kind: str, data: bytes) -> rendered.Rendered:
        r = imaging.render(data, spec, "x.jpg", "", 0.0)
        out.append(Rendered(i, kind, int(r.hash, 16), crops.split(r.crops)))
        return r

    for i, (_, im) in enumerate(realpics.pictures(photos)):
        if one(i, "original", jpeg(im)).low_information:
            out.pop()
            continue
        for kind, edit in realpics.EDITS.items():
            one(i, kind, edit(im, rng))
    return out


def _windows(pics: list[Rendered]) -> NDArray[np.uint64]:
    return np.array([p.windows or [0] * len(crops.WINDOWS) for p in pics], dtype=np.uint64)


def _match_matrix(
    hashes: NDArray[np.uint64], windows: NDArray[np.uint64], a: NDArray[np.intp], b: NDArray[np.intp]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For pairs (a, b): the whash distance (99 where the whole-picture window hashes disagree)
    and the smallest distance between a window of a and a stored window of b."""
    whole = np.bitwise_count(hashes[a] ^ hashes[b]).astype(np.int64)
    verified = np.bitwise_count(windows[a, 0] ^ windows[b, 0]) <= crops.VERIFY_DISTANCE
    whole = np.where(verified, whole, 99)
    crop = np.full(a.size, 99, np.int64)
    for s in range(crops.STORED):
        stored = windows[b, s]
        for q in range(windows.shape[1]):
            np.minimum(crop, np.bitwise_count(windows[a, q] ^ stored), out=crop)
    return whole, crop


def _dupes_crop(windows: NDArray[np.uint64], a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Which pairs (a, b) ``dupes --near`` links by crop: the crop links ``near.croplinks.all_links``
    finds among all the pictures (what the writer keeps in ``crop_pairs``)."""
    from watcherd.near.croplinks import all_links

    n = windows.shape[0]
    at = np.flatnonzero(windows.any(axis=1))  # a picture without window hashes (all zero here) has no links
    found = all_links(np.ascontiguousarray(windows[at, : crops.HEX]))
    linked = {int(at[i]) * n + int(at[j]) for i, j, _ in found}
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    return np.isin(lo * n + hi, np.array(sorted(linked), dtype=np.int64))


def real_report(photos: int) -> None:
    """Print the real-picture tables: recall per edit and false positives by distance, today vs new."""
    pics = render_real(photos)
    hashes = np.array([p.hash for p in pics], dtype=np.uint64)
    windows = _windows(pics)
    source = np.array([p.source for p in pics])
    kinds = np.array([p.kind for p in pics])
    original = {p.source: i for i, p in enumerate(pics) if p.kind == "original"}
    edits = np.array([i for i, p in enumerate(pics) if p.kind != "original"])
    origs = np.array([original[p.source] for p in pics if p.kind != "original"])
    edit_kind = kinds[edits]
    a, b = np.triu_indices(len(pics), 1)
    far = source[a] != source[b]
    a, b = a[far], b[far]
    today_near = np.bitwise_count(hashes[edits] ^ hashes[origs]).astype(np.int64)
    today_far = np.bitwise_count(hashes[a] ^ hashes[b]).astype(np.int64)
    # new: the edit asks (similar EDIT), the original asks (similar ORIGINAL); a pair of
    # unrelated pictures is reported when either asking finds the other (dupes --near).
    w_eo, c_eo = _match_matrix(hashes, windows, edits, origs)
    w_oe, c_oe = _match_matrix(hashes, windows, origs, edits)
    w_ab, c_ab = _match_matrix(hashes, windows, a, b)
    w_ba, c_ba = _match_matrix(hashes, windows, b, a)
    cd = crops.CROP_DISTANCE
    sources = len(original)
    wall = sum(1 for p in pics if p.kind == "original" and p.source < len(realpics.wallpapers()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{sources} pictures ({wall} wallpapers, {sources - wall} sample photos), {len(realpics.EDITS)} edits each, "
        f"{a.size:,} pairs of unrelated pictures; window hashes match within {cd} bits"
    )
    print()
    print("recall % / false-positive % at distance d (all edits; new = whole within d, confirmed, or a crop)")
    print("| d | today (whash) | new |")
    print("|---|---|---|")
    for d in DISTANCES:
        new_near = ((w_eo <= d) | (c_eo <= cd)).mean()
        new_far = ((w_ab <= d) | (c_ab <= cd) | (w_ba <= d) | (c_ba <= cd)).mean()
        print(
            f"| {d} | {100 * rates(list(today_near), d):.1f} / {100 * rates(list(today_far), d):.3f} "
            f"| {100 * new_near:.1f} / {100 * new_far:.4f} |"
        )
    d = DEFAULT
    print()
    print(f"at the default distance {d}: share of edited copies found")
    print(
        "| edit | today: whash d<=4 | new: `similar EDIT` finds the original "
        "| new: `similar ORIGINAL` finds the edit | new: `dupes --near` groups them | whash distance (median) |"
    )
    print("|---|---|---|---|---|---|")
    dupes_near = (w_eo <= d) | _dupes_crop(windows, edits, origs)
    for kind in realpics.EDITS:
        m = edit_kind == kind
        eo = ((w_eo[m] <= d) | (c_eo[m] <= cd)).mean()
        oe = ((w_oe[m] <= d) | (c_oe[m] <= cd)).mean()
        print(
            f"| {kind} | {100 * (today_near[m] <= d).mean():.0f}% | {100 * eo:.0f}% | {100 * oe:.0f}% "
            f"| {100 * dupes_near[m].mean():.0f}% | {int(np.median(today_near[m]))} |"
        )
    promised = np.isin(edit_kind, realpics.PROMISED)
    both = ((w_eo <= d) | (c_eo <= cd)) & ((w_oe <= d) | (c_oe <= cd))
    new_fp = ((w_ab <= d) | (c_ab <= cd) | (w_ba <= d) | (c_ba <= cd)).sum()
    dupes_fp = ((w_ab <= d) | (w_ba <= d) | _dupes_crop(windows, a, b)).sum()
    print()
    print(
        f"promised crops found both ways at the defaults: {100 * both[promised].mean():.1f}% "
        f"(today {100 * (today_near[promised] <= d).mean():.1f}%); false positives: new {new_fp} of {a.size:,} "
        f"pairs ({100 * new_fp / a.size:.4f}%; grouped by dupes --near: {dupes_fp}), "
        f"today {(today_far <= d).sum()} ({100 * rates(list(today_far), d):.4f}%)"
    )
    print(f"promised crops grouped by dupes --near: {100 * dupes_near[promised].mean():.1f}%")
    print()
    print("unrelated pairs within each window distance (the crop path alone, either way round):")
    crop_far = np.minimum(c_ab, c_ba)
    print(", ".join(f"{t}: {(crop_far <= t).sum()} ({100 * (crop_far <= t).mean():.4f}%)" for t in range(4, 14, 2)))


DEFAULT = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("real", "generated"), default="real", help="which pictures (default real)")
    parser.add_argument("--photos", type=int, default=None, help="sample photos (default 50; generated set: 150)")
    parser.add_argument("--max-fpr", type=float, default=0.0005, help="false-positive budget for the default distance")
    args = parser.parse_args()
    if args.set == "real":
        real_report(50 if args.photos is None else args.photos)
        return
    args.photos = 150 if args.photos is None else args.photos
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
