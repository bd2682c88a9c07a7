"""A scan's listing runs a set of names ahead of what is decided about them (``reconcile._listed_ahead``)."""

from __future__ import annotations

from watcherd.flow.reconcile import _listed_ahead


def test_folders_come_in_order_each_after_the_names_listed_behind_it_make_a_set() -> None:
    folders = [("a", ["1", "2"]), ("b", ["3"]), ("c", ["4", "5", "6"]), ("d", []), ("e", ["7"])]
    events: list[str] = []
    for folder, _ in _listed_ahead(iter(folders), 3, lambda folder, names: events.append(f"listed {folder}")):
        events.append(f"given {folder}")
    assert events == [
        "listed a",
        "listed b",
        "listed c",
        "given a",  # b and c, listed after it, hold 4 names: a set (3)
        "given b",  # c holds 3
        "listed d",
        "listed e",  # after c: 1 name
        "given c",
        "given d",
        "given e",
    ]


def test_nothing_is_listed_ahead_when_the_set_is_empty() -> None:
    events: list[str] = []
    for folder, _ in _listed_ahead(iter([("a", ["1"]), ("b", ["2"])]), 0, lambda f, n: events.append(f"listed {f}")):
        events.append(f"given {folder}")
    assert events == ["listed a", "given a", "listed b", "given b"]
