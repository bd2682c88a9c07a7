"""The steps through the page's API (``watcherd serve``): a decision on an item of
``GET /api/dupes``, a batch of them, an undo (of a batch too), and the views of a file an
item names.
"""

from __future__ import annotations

from typing import Any

from tests.interleaving.library import Library
from tests.interleaving.pictures import pick
from tests.interleaving.script import VIEW_ACCEPTED


def _files_named(doc: Any) -> list[str]:
    """Every original and thumbnail path a document of ``dupes --json`` names."""
    if isinstance(doc, dict):
        found = [str(v) for k, v in doc.items() if k in ("original", "thumbnail", "path") and isinstance(v, str) and v]
        return found + [f for v in doc.values() for f in _files_named(v)]
    if isinstance(doc, list):
        return [f for v in doc for f in _files_named(v)]
    return []


class PageSteps(Library):
    """Decisions, undos and views through the page, as its own script sends them."""

    def page_resolve(self, a: dict[str, Any]) -> str:
        status, items = self.page("GET", "/api/dupes?near=4" if a["near"] else "/api/dupes")
        if status != 200:
            raise self.page_failed("/api/dupes", status, str(items))
        item = self._item(items, a)
        if item is None:
            return "nothing to decide on the page"
        answer = self.page_change("/api/resolve", {"id": item["id"], "decision": a["decision"]})
        return f"POST /api/resolve {item['id']} {a['decision']} -> {answer[:200]}"

    def page_batch(self, a: dict[str, Any]) -> str:
        """Several items of ``GET /api/dupes`` (collisions and near groups) decided at once, as the
        page's "apply to all shown" sends them: one batch, undone as one."""
        items: list[Any] = []
        for near in (False, True):
            status, listed = self.page("GET", "/api/dupes?near=4" if near else "/api/dupes")
            if status != 200:
                raise self.page_failed("/api/dupes", status, str(listed))
            items += listed
        chosen: list[Any] = []
        for k in range(int(a["count"])):
            item = self._item(items, {"item": int(a["item"]) + 7 * k})
            if item is not None and item not in chosen:
                chosen.append(item)
        if not chosen:
            return "nothing to decide on the page"
        batch = f"b{len(self.batches)}-{a['item']}"
        self.batches.append(batch)
        decisions = [{"id": i["id"], "decision": a["decision"]} for i in chosen]
        answer = self.page_change("/api/resolve", {"decisions": decisions, "batch": batch})
        return f"POST /api/resolve batch {batch} of {[i['id'] for i in chosen]} {a['decision']} -> {answer[:200]}"

    def page_undo_batch(self, a: dict[str, Any]) -> str:
        """``POST /api/undo {"batch"}`` of a batch the page made (409 when a decision made after
        it, anywhere, is in the way)."""
        batch = pick(self.batches, int(a["pick"]))
        if batch is None:
            return "no batch made on the page"
        answer = self.page_change("/api/undo", {"batch": batch}, also=frozenset({409}))
        return f"POST /api/undo batch {batch} -> {answer[:200]}"

    def page_undo(self, a: dict[str, Any]) -> str:
        # 409: a decision made between the request (which names the decision last then) and
        # the writer applying it (a gesture settling meanwhile) is not undone in its place.
        return f"POST /api/undo -> {self.page_change('/api/undo', also=frozenset({409}))[:200]}"

    def page_view(self, a: dict[str, Any]) -> str:
        status, items = self.page("GET", "/api/dupes?near=4" if a["near"] else "/api/dupes")
        if status != 200:
            raise self.page_failed("/api/dupes", status, str(items))
        item = self._item(items, a)
        named = sorted(set(_files_named(item))) if item is not None else []
        rel = pick(named, int(a["file"]))
        if rel is None:
            return "nothing to look at on the page"
        said = []
        for path in (f"/file/{rel}", f"/preview/{rel}?size=small"):
            status, doc = self.page("GET", path)
            if status not in VIEW_ACCEPTED:
                raise self.page_failed(path, status, str(doc)[:200])
            said.append(f"GET {path} -> {status}")
        return "; ".join(said)
