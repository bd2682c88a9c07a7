"""``watcherd serve``: the review page under uvicorn, safe by default."""

from __future__ import annotations

import secrets
import sys

from watcherd.core.config import Config
from watcherd.core.errors import UsageError
from watcherd.web.security import is_loopback


def page_url(host: str, port: int, token: str | None) -> str:
    """The address to open (with the token, once, when one is needed)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(cfg: Config, host: str, port: int, token: str | None) -> int:
    """Serve the page until Ctrl-C; off loopback a token is required (generated if not given)."""
    import uvicorn

    from watcherd.web.app import create_app

    if token is not None and len(token) < 16:
        raise UsageError("--token must be at least 16 characters")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    app = create_app(cfg, token)
    print(f"watcherd: review page for {cfg.root} at {page_url(host, port, token)}", flush=True, file=sys.stdout)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    return 0
