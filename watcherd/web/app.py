"""The review page and its JSON API: a Starlette app over one ``Library``.

Reads go to the catalog read-only; every change goes through ``Library`` and so through
the one writer. Files are served only from inside the root; uploads are decoded in the
same sandbox as ingest.
"""

from __future__ import annotations

import base64
import errno
import json
import mimetypes
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from watcherd.catalog.finding import TagQuery
from watcherd.commands import search
from watcherd.commands.library import Library
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.documents import Collision, NearGroup, SimilarHit
from watcherd.core.errors import ImageError, UsageError, WatcherdError
from watcherd.core.naming import number
from watcherd.core.nearpairs import DEFAULT_DISTANCE
from watcherd.decode.sandbox import Sandbox
from watcherd.fs import fsops
from watcherd.web.pages import search_context, tags_context
from watcherd.web.review import review_items
from watcherd.web.security import Guard
from watcherd.web.views import Made, Views

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


async def _chunks(fh: BinaryIO, size: int) -> AsyncIterator[bytes]:
    """The file's bytes up to the ``size`` it had when it was opened (a file written meanwhile
    is cut there; one cut shorter ends the response sooner: no length is promised)."""
    try:
        left = size
        while left > 0:
            chunk = await _call(fh.read, min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


GALLERY_PAGE = 200  # /api/find's default limit (the tag gallery pages by pages.PER_PAGE)


def _count(request: Request, key: str, default: T) -> int | T:
    """A non-negative integer query parameter (``default`` when not given), else 400."""
    raw = request.query_params.get(key)
    if raw is None:
        return default
    value = number(raw)
    if value is None:
        raise HTTPException(400, f"{key} must be a non-negative integer")
    return value


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
    if declared is not None and (number(declared) or 0) > limit:
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
        self.views = Views(cfg)

    def close(self) -> None:
        """Stop the decoder workers."""
        self._sandbox.close()
        self.views.close()

    # --- pages -------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        items = await _call(review_items, self.library)
        context = {"items": items, "near": DEFAULT_DISTANCE}
        return TEMPLATES.TemplateResponse(request, "review.html", context)

    async def items(self, request: Request) -> Response:
        """Some items of the queue as HTML (``?id=A&id=B``): what the live queue inserts."""
        wanted = set(request.query_params.getlist("id"))
        items = await _call(review_items, self.library, wanted) if wanted else []
        return TEMPLATES.TemplateResponse(request, "items.html", {"items": items, "offset": 0})

    async def file(self, request: Request) -> Response:
        """A file of the library as it is now, streamed from the file opened once: a file moved or
        deleted since the page listed it is 404, never half a response."""
        target = inside_root(self.root, request.path_params["path"])
        try:
            fh, st = await _call(fsops.open_held, target)
        except (FileNotFoundError, NotADirectoryError):
            raise HTTPException(404) from None
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # no regular file (any more)
                raise HTTPException(404) from None
            raise
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return StreamingResponse(_chunks(fh, st.st_size), media_type=media, headers=headers)

    def _view(self, made: Made) -> Response:
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return Response(made.data, media_type="image/jpeg", headers=headers)

    async def preview(self, request: Request) -> Response:
        """A rendering of an original the browser cannot show itself (made in the sandbox, cached)."""
        target = inside_root(self.root, request.path_params["path"])
        size = request.query_params.get("size", "full")
        return self._view(await _call(self.views.preview, target, size, request.query_params.get("sha")))

    def _pair(self, request: Request) -> tuple[Path, Path]:
        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not a or not b:
            raise HTTPException(400, "a=PATH&b=PATH (two originals) are needed")
        return inside_root(self.root, a), inside_root(self.root, b)

    async def difference(self, request: Request) -> Response:
        """The difference of two originals as a picture (made in the sandbox, cached)."""
        return self._view(await _call(self.views.difference, *self._pair(request)))

    async def api_difference(self, request: Request) -> Response:
        """How much two originals differ (``mean``, ``changed``, sizes), and where the picture is."""
        made = await _call(self.views.difference, *self._pair(request))
        return JSONResponse({**made.note, "image": "/diff?" + request.url.query})

    async def api_version(self, request: Request) -> Response:
        """What changes whenever the catalog does (the live queue asks this, then ``/api/dupes``)."""
        try:
            st = os.stat(self.cfg.database_path)
            version = f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
        except OSError:
            version = "none"
        return JSONResponse({"version": version})

    async def search(self, request: Request) -> Response:
        hits: list[SimilarHit] | None = None
        error = None
        uploaded = None
        query = request.query_params.get("hash", "")
        distance = request.query_params.get("distance", str(DEFAULT_DISTANCE))
        try:
            if request.method == "POST":
                data, filename, fields = await self._upload(request)
                distance = fields.get("distance") or distance
                hits = await self._similar_upload(data, filename, int(distance))
                shown = await _call(self.views.preview_data, data)
                uploaded = {
                    "name": Path(filename).name,
                    "src": "data:image/jpeg;base64," + base64.b64encode(shown).decode(),
                }
            elif query:
                hits = await _call(self.library.similar, query, int(distance))
        except (WatcherdError, ValueError) as exc:
            error = str(exc)
        context = await _call(search_context, self.library, hits, error, query, distance, uploaded)
        return TEMPLATES.TemplateResponse(request, "search.html", context, status_code=400 if error else 200)

    async def tags(self, request: Request) -> Response:
        params = request.query_params
        context = await _call(
            tags_context,
            self.library,
            params.getlist("tag"),
            params.get("size", ""),
            params.get("q", ""),
            params.get("page", "1"),
        )
        return TEMPLATES.TemplateResponse(request, "tags.html", context)

    # --- the JSON API: what the CLI's --json prints ----------------------------------

    async def api_dupes(self, request: Request) -> Response:
        near = _count(request, "near", None) if request.query_params.get("near") else None  # near= is no near
        decided = request.query_params.get("all") in ("1", "true")
        items: list[Collision | NearGroup] = await _call(lambda: self.library.dupes(near, decided=decided))
        return JSONResponse(items)

    async def api_find(self, request: Request) -> Response:
        """``find --json`` over HTTP, a page at a time: tag, any, not (each repeatable), untagged,
        filename, limit, offset."""
        params = request.query_params
        query = TagQuery(
            tuple(params.getlist("tag")),
            tuple(params.getlist("any")),
            tuple(params.getlist("not")),
            params.get("untagged") in ("1", "true"),
            params.get("filename"),
        )
        limit = _count(request, "limit", GALLERY_PAGE)
        offset = _count(request, "offset", 0)
        return JSONResponse(await _call(lambda: self.library.find(query, limit=limit, offset=offset)))

    async def api_resolve(self, request: Request) -> Response:
        """One decision ``{id, decision}``; or a batch ``{decisions: [{id, decision}, ...]}``, undone as one."""
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "a JSON body {id, decision} is needed") from None
        fields = body if isinstance(body, dict) else {}
        if isinstance(fields.get("decisions"), list):
            batch = fields.get("batch") or secrets.token_hex(8)
            if not isinstance(batch, str):
                raise HTTPException(400, "a batch is named by text")
            return JSONResponse(await _call(self.library.resolve_batch, fields["decisions"], batch, "page"))
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
        if fields is None or any(not isinstance(fields.get(k), (str, type(None))) for k in ("id", "token", "batch")):
            raise HTTPException(400, 'the body is empty or a JSON object {"id", "token"} or {"batch"}')
        if fields.get("batch") is not None:
            return JSONResponse(await _call(self.library.undo_batch, fields["batch"]))
        return JSONResponse(await _call(self.library.undo, fields.get("id"), fields.get("token")))

    async def api_similar(self, request: Request) -> Response:
        distance = _count(request, "distance", DEFAULT_DISTANCE)
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
        spec = search.query_spec(self.cfg, reader)
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
        Route("/queue/items", web.items),
        Route("/file/{path:path}", web.file),
        Route("/preview/{path:path}", web.preview),
        Route("/diff", web.difference),
        Route("/api/diff", web.api_difference),
        Route("/api/version", web.api_version),
        Route("/search", web.search, methods=["GET", "POST"]),
        Route("/tags", web.tags),
        Route("/api/dupes", web.api_dupes),
        Route("/api/find", web.api_find),
        Route("/api/resolve", web.api_resolve, methods=["POST"]),
        Route("/api/undo", web.api_undo, methods=["POST"]),
        Route("/api/similar", web.api_similar, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={WatcherdError: on_error}, lifespan=lifespan)
    app.add_middleware(Guard, token=token)
    app.state.web = web
    return app
