"""The ``dupes`` answers: collisions with both sides' files as they are now, near-duplicate
groups with the member the keeper rule suggests, and the near groups already decided.

Only ``dupes``, the review page and ``arrange`` read these, so ``find`` and ``status``
never load the keeper rule or the near-duplicate groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from watcherd.catalog import CatalogReader
from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Verdict, existing_now
from watcherd.core.config import Config
from watcherd.core.documents import Collision, NearGroup
from watcherd.core.errors import UsageError
from watcherd.core.keeper import choose, is_burst
from watcherd.core.nearpairs import MAX_RADIUS, Member, names_of, near_id, sides, widest
from watcherd.decode.facts import collision_facts, member_facts

__all__ = ["SIDES", "as_now", "distinct_pairs", "dupes", "near_groups", "near_kept", "near_page"]

SIDES: tuple[Literal["existing"], Literal["newcomer"]] = ("existing", "newcomer")


def as_now(catalog: CatalogReader, c: CollisionRecord) -> CollisionRecord:
    """``c`` with its existing side where that image's files are today (``collisionrecords.existing_now``)."""
    return dataclasses.replace(c, existing=existing_now(c, catalog.existing_holder(c)))


def dupes(
    catalog: CatalogReader,
    *,
    decided: bool = False,
    root: Path | None = None,
    collisions: Iterable[CollisionRecord] | None = None,
) -> list[Collision]:
    """The undecided collisions (with ``decided``, every one) with both sides' paths.

    With ``root`` an undecided one says which side the keeper rule suggests keeping.
    ``collisions``: the catalog's, when the caller has read them already.
    """
    out: list[Collision] = []
    for c in catalog.collisions() if collisions is None else collisions:
        if c.decision is not None and not decided:
            continue
        c = as_now(catalog, c)
        existing, newcomer = c.existing, c.newcomer
        suggested: Literal["existing", "newcomer"] | None = None
        reasons: list[str] = []
        if root is not None and c.decision is None:
            choice = choose(collision_facts(root, c)[0])
            suggested = SIDES[choice.keep]
            reasons = [f"{side}: {r}" for side, said in zip(SIDES, choice.reasons, strict=True) for r in said]
        paths = [p for p in (existing.thumbnail, existing.original, newcomer.thumbnail, newcomer.original) if p]
        if c.decision is not None:
            # Where the files are now: the image that holds each side, and what was set aside.
            paths = []
            for name in dict.fromkeys([c.name, c.decision.image or c.name]):
                rec = catalog.image(name)
                if rec is not None:
                    paths += [*rec.paths, *([rec.original] if rec.original else [])]
            paths += [p for p in (c.decision.archived, newcomer.original, *c.decision.again) if p and p not in paths]
        out.append(
            {
                "id": c.id,
                "decision": c.decision.kind.value if c.decision else None,
                "decided": c.decision.decided if c.decision else None,
                "name": c.name,
                "kind": "exact" if c.kind is CollisionKind.EXACT else "perceptual",
                "detected": c.detected,
                "paths": paths,
                "existing": {"thumbnail": existing.thumbnail, "original": existing.original, "sha256": existing.sha256},
                "newcomer": {
                    "thumbnail": newcomer.thumbnail,
                    "original": newcomer.original,
                    "sha256": newcomer.sha256,
                    "filename": newcomer.filename,
                },
                "suggested": suggested,
                "reasons": reasons,
            }
        )
    return out


def near_groups(
    cfg: Config, distance: int, decided_groups: list[list[str]] | None = None, *, decided: bool = False
) -> list[NearGroup]:
    """Every near group at ``distance`` (``near_page`` unpaged)."""
    return near_page(cfg, distance, decided_groups, decided=decided)[0]


def near_page(
    cfg: Config,
    distance: int,
    decided_groups: list[list[str]] | None = None,
    *,
    decided: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[NearGroup], int]:
    """Groups of distinct present images that match each other (``dupes --near``), by their widest
    distance and first name: ``offset`` skipped, at most ``limit`` given; and how many there are.

    A group is the names' hashes within ``distance`` (confirmed by the whole-picture window
    hashes), or one a crop of the other (``near.croplinks``); linked pairs make one group.
    Low-information images are left out: their hashes say nothing about them. A group
    whose every pair lies within a group decided ``distinct`` is left out too (listed,
    with its decision, when ``decided``). A group taken as one burst by one camera
    (``keeper.is_burst``) is of kind ``burst`` and has no suggested keeper. Only the groups
    given are looked at on disk, and only where their records do not say enough
    (``facts.member_facts``).
    """
    if not 0 <= distance <= MAX_RADIUS:
        raise UsageError(f"--near must be from 0 to {MAX_RADIUS}")
    if not Path(cfg.database_path).exists():
        return [], 0
    from watcherd.near.groups import read_groups
    from watcherd.near.reader import index_path  # not ``persisted``: numpy only if images wait for pairs

    # Connected components of the pairs the writer keeps (plus the few images waiting
    # for theirs); computed in bulk beyond the kept radius (see "Near-duplicate search").
    settled_by = _settled_by(decided_groups or [])
    groups = read_groups(cfg.database_path, index_path(cfg.state_dir), distance)
    listed = [(g, s) for g in groups for s in (settled_by(g.names),) if decided or not s]
    listed.sort(key=lambda gs: (gs[0].span, gs[0].names[0]))
    page = listed[offset : None if limit is None else offset + limit]
    with CatalogReader(cfg.database_path) as catalog:
        members = catalog.members_named([n for group, _ in page for n in group.names])
    out: list[NearGroup] = []
    root = Path(cfg.root) if cfg.root is not None else None
    for group, settled in page:
        names = group.names
        found = [members[n] for n in names if n in members]
        where = {m.name: m.path for m in found}
        first, last = sides(found) if found else (None, None)
        burst, suggested, reasons = _near_choice(root, found, where)
        if settled:
            suggested, reasons = None, []
        out.append(
            {
                "id": near_id(names),
                "decision": "distinct" if settled else None,
                "decided": None,
                "kind": "burst" if burst else "near",
                "name": names[0],
                "names": names,
                "paths": [where[n] for n in names if n in where],
                "max_distance": group.span,
                "existing": first.name if first else names[0],
                "newcomer": last.name if last else names[-1],
                "suggested": suggested,
                "reasons": reasons,
                "match": "crop" if group.crop else "whole",
            }
        )
    return out, len(listed)


def _near_choice(root: Path | None, members: list[Member], where: dict[str, str]) -> tuple[bool, str | None, list[str]]:
    """Is the group a burst (from its pictures' EXIF, as the records keep it), and the member the
    keeper rule keeps and why ("NAME: reason" each); a burst has none: no frame is pre-selected
    for merging.

    The candidates go in catalog order (first catalogued first), so only a full tie
    depends on it, and it keeps the group's existing member, as for a collision."""
    if not members or root is None:
        return False, None, []
    ordered = sorted(members, key=lambda m: (m.first_seen, m.name))
    seen = [member_facts(root, m, where[m.name]) for m in ordered]
    if is_burst([taken for _, taken in seen]):
        return True, None, []
    choice = choose([facts for facts, _ in seen])
    reasons = [f"{m.name}: {said}" for m, told in zip(ordered, choice.reasons, strict=True) for said in told]
    return False, ordered[choice.keep].name, reasons


def near_kept(catalog: CatalogReader) -> list[NearGroup]:
    """Near groups decided keep-existing or keep-newcomer (``dupes --near N --all``), oldest first:
    where the kept image's files are now and where each merged original was set aside."""
    out: list[NearGroup] = []
    for near in catalog.near_decisions():
        merged = [m.image for m in near.merged]
        kept = catalog.image(near.decision.image or "")
        existing, newcomer = sides([*merged, *([kept] if kept is not None else [])])
        paths = [*kept.paths, *([kept.original] if kept.original else [])] if kept is not None else []
        paths += [p for p in (*(m.archived for m in near.merged), *near.decision.again) if p and p not in paths]
        out.append(
            {
                "id": near.id,
                "decision": near.decision.kind.value,
                "decided": near.decision.decided,
                "kind": "near",
                "name": near.decision.image or near.id,
                "names": names_of(near.id),
                "paths": paths,
                "max_distance": widest([r.hash for r in [*merged, *([kept] if kept is not None else [])]]),
                "existing": existing.name,
                "newcomer": newcomer.name,
                "suggested": None,
                "reasons": [],
                "match": None,
            }
        )
    return out


def distinct_pairs(collisions: Iterable[CollisionRecord]) -> list[list[str]]:
    """Each collision decided ``distinct`` as a pair: the image it collided with and the
    newcomer's image (``~sha`` named), which look alike by construction and were told apart."""
    return [
        [c.name, c.decision.image]
        for c in collisions
        if c.decision is not None and c.decision.kind is Verdict.DISTINCT and c.decision.image
    ]


def _settled_by(groups: list[list[str]]) -> Callable[[list[str]], bool]:
    """Is every pair of a group's names inside one of ``groups`` (decided distinct)?"""
    if not groups:
        return lambda names: len(names) < 2  # no pair is inside a decided group
    within: dict[str, set[int]] = {}
    for k, g in enumerate(groups):
        for name in g:
            within.setdefault(name, set()).add(k)

    def settled(names: list[str]) -> bool:
        empty: set[int] = set()
        return all(within.get(a, empty) & within.get(b, empty) for i, a in enumerate(names) for b in names[i + 1 :])

    return settled
