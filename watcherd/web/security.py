"""Who may use the page: a token off loopback, same-origin changes, POST for every change.

Pure ASGI middleware, so it sees every request before a route does.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "watcherd_token"
SAFE_METHODS = {"GET", "HEAD"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: the binds that need no token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def same_origin(headers: dict[str, str]) -> bool:
    """A change is taken only from the page itself: ``Sec-Fetch-Site`` or ``Origin`` must say so.

    A request carrying neither (curl, a script holding the token) is not a browser's
    cross-site request, so it passes.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc == headers.get("host") and parts.scheme in ("http", "https")


class Guard:
    """401 without the token (when one is set), 405 for a change not by POST, 403 cross-origin."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _token_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        given: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        if COOKIE in cookie:
            given.append(cookie[COOKIE].value)
        return any(hmac.compare_digest(g.encode(), self.token.encode()) for g in given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self.token is not None and not self._token_ok(scope, headers):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            offered = query.get("token", [""])[0]
            if scope["method"] in SAFE_METHODS and hmac.compare_digest(offered.encode(), self.token.encode()):
                # Accepted once in the URL, then kept in a cookie; the redirect drops it from the address bar.
                response = RedirectResponse(scope["path"], status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
            await PlainTextResponse("a token is needed: open the URL watcherd serve printed", 401)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            if scope["method"] != "POST":
                await PlainTextResponse("changes are made by POST only", 405)(scope, receive, send)
                return
            if not same_origin(headers):
                await PlainTextResponse("cross-origin change refused", 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
