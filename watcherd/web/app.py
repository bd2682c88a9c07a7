"""The review page and its JSON API: a Starlette app over one ``Library``.

Reads go to the catalog read-only; every change goes through ``Library`` and so through
the one writer. Files are served only from inside the root; uploads are decoded in the
same sandbox as ingest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from watcherd import crops, queries
from watcherd.catalog.reads import TagQuery
from watcherd.config import Config
from watcherd.decoders import Sandbox
from watcherd.documents import Collision, NearGroup, SimilarHit
from watcherd.errors import ImageError, UsageError, WatcherdError
from watcherd.library import Library
from watcherd.web.review import originals_of, review_items
from watcherd.web.security import Guard

T = TypeVar("T")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
UPLOAD_LIMIT = 32 << 20  # a picture to search with, not an archive


def inside_root(root: Path, rel: str) -> Path:
    """``root/rel`` resolved (symlinks followed) if it is a file inside the root, else 404."""
    base = root.resolve()
    try:
        target = (base / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        raise HTTPException(404) from None
    if not target.is_relative_to(base) or not target.is_file() or base / ".watcherd" in target.parents:
        raise HTTPException(404)
    return target


HTTP_STATUS = {2: 400, 4: 503, 5: 503, 7: 409}  # by the CLI's exit code (a daemon's refusal carries only that)


def _status(exc: WatcherdError) -> int:
    if isinstance(exc, ImageError):
        return 400
    return HTTP_STATUS.get(exc.exit_code, 500)


async def _call(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking library call off the event loop."""
    return await run_in_threadpool(fn, *args)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"uploads are limited to {limit >> 20} MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"uploads are limited to {limit >> 20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


class Web:
    """The routes, sharing one library and one decoder sandbox."""

    def __init__(self, cfg: Config, upload_limit: int = UPLOAD_LIMIT) -> None:
        self.cfg = cfg
        self.library = Library(cfg)
        self.root = Path(cfg.root or ".")
        self.upload_limit = upload_limit
        self._sandbox = Sandbox(cfg.decode_timeout, cfg.decode_memory)
        self._sandbox_lock = threading.Lock()

    def close(self) -> None:
        """Stop the decoder worker."""
        self._sandbox.close()

    # --- pages -------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        items = await _call(review_items, self.library)
        context = {"items": items, "near": queries.DEFAULT_DISTANCE}
        return TEMPLATES.TemplateResponse(request, "review.html", context)

    async def file(self, request: Request) -> Response:
        target = inside_root(self.root, request.path_params["path"])
        return FileResponse(target, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def search(self, request: Request) -> Response:
        hits: list[SimilarHit] | None = None
        error = None
        query = request.query_params.get("hash", "")
        distance = request.query_params.get("distance", str(queries.DEFAULT_DISTANCE))
        try:
            if request.method == "POST":
                data, filename, fields = await self._upload(request)
                distance = fields.get("distance") or distance
                hits = await self._similar_upload(data, filename, int(distance))
            elif query:
                hits = await _call(self.library.similar, query, int(distance))
        except (WatcherdError, ValueError) as exc:
            error = str(exc)
        context = {"hits": hits, "error": error, "hash": query, "distance": distance}
        return TEMPLATES.TemplateResponse(request, "search.html", context, status_code=400 if error else 200)

    async def tags(self, request: Request) -> Response:
        chosen = request.query_params.getlist("tag")
        counts = await _call(self.library.tags)
        hits = await _call(self.library.find, TagQuery(all_of=tuple(chosen))) if chosen else []
        originals = await _call(originals_of, self.library, [h["name"] for h in hits])
        context = {"counts": counts, "chosen": chosen, "hits": hits, "originals": originals}
        return TEMPLATES.TemplateResponse(request, "tags.html", context)

    # --- the JSON API: what the CLI's --json prints ----------------------------------

    async def api_dupes(self, request: Request) -> Response:
        near = request.query_params.get("near")
        decided = request.query_params.get("all") in ("1", "true")
        items: list[Collision | NearGroup] = await _call(
            lambda: self.library.dupes(int(near) if near else None, decided=decided)
        )
        return JSONResponse(items)

    async def api_resolve(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "a JSON body {id, decision} is needed") from None
        fields = body if isinstance(body, dict) else {}
        if not isinstance(fields.get("id"), str) or not isinstance(fields.get("decision"), str):
            raise HTTPException(400, "a JSON body {id, decision} is needed")
        return JSONResponse(await _call(self.library.resolve, body["id"], body["decision"], "page"))

    async def api_undo(self, request: Request) -> Response:
        """Undo the last decision; with ``{"id", "token"}`` only if it is that one (else 409)."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise HTTPException(400, 'the body is empty or a JSON object {"id", "token"}') from None
        fields = body if isinstance(body, dict) else None
        if fields is None or any(not isinstance(fields.get(k), (str, type(None))) for k in ("id", "token")):
            raise HTTPException(400, 'the body is empty or a JSON object {"id", "token"}')
        return JSONResponse(await _call(self.library.undo, fields.get("id"), fields.get("token")))

    async def api_similar(self, request: Request) -> Response:
        distance = int(request.query_params.get("distance", queries.DEFAULT_DISTANCE))
        if request.method == "POST":
            data, filename, _ = await self._upload(request)
            return JSONResponse(await self._similar_upload(data, filename, distance))
        target = request.query_params.get("hash")
        if not target:
            raise HTTPException(400, "hash=H is needed (or POST an image)")
        return JSONResponse(await _call(self.library.similar, target, distance))

    # --- uploads ------------------------------------------------------------------

    async def _upload(self, request: Request) -> tuple[bytes, str, dict[str, str]]:
        """The uploaded ``image`` (bytes, file name) and the other form fields, size-limited."""
        body = await _read_limited(request, self.upload_limit)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async with Request(request.scope, replay).form() as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise UsageError("choose an image to upload (field 'image')")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return await upload.read(), upload.filename or "upload", fields

    async def _similar_upload(self, data: bytes, filename: str, distance: int) -> list[SimilarHit]:
        hash_hex, windows = await _call(self._hash_upload, data, filename)
        return await _call(self.library.similar_to, hash_hex, windows, distance)

    def _hash_upload(self, data: bytes, filename: str) -> tuple[str, list[int]]:
        """Hash uploaded bytes in the decoder sandbox, exactly as ingest names images (and its windows)."""
        reader = self.library.pinned_settings()
        spec = queries.query_spec(self.cfg, reader)
        with self._sandbox_lock:
            rendered = self._sandbox(data, spec, Path(filename).name, "", time.time())
        return rendered.hash, crops.split(rendered.crops)


def create_app(cfg: Config, token: str | None = None, upload_limit: int = UPLOAD_LIMIT) -> Starlette:
    """The page for one library; ``token`` (when set) is required on every request."""
    web = Web(cfg, upload_limit)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WatcherdError)
        return JSONResponse({**(exc.details or {}), "error": str(exc)}, status_code=_status(exc))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            web.close()

    routes = [
        Route("/", web.index),
        Route("/file/{path:path}", web.file),
        Route("/search", web.search, methods=["GET", "POST"]),
        Route("/tags", web.tags),
        Route("/api/dupes", web.api_dupes),
        Route("/api/resolve", web.api_resolve, methods=["POST"]),
        Route("/api/undo", web.api_undo, methods=["POST"]),
        Route("/api/similar", web.api_similar, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={WatcherdError: on_error}, lifespan=lifespan)
    app.add_middleware(Guard, token=token)
    app.state.web = web
    return app
