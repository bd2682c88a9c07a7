"""The review page (``watcherd serve``): a Starlette app over ``Library``, the top edge beside
the CLI. ``app`` (routes and the JSON API), ``review`` (the queue's items), ``sides`` (each
picture's facts), ``pages`` (/tags, /search), ``views`` (previews and differences, made in the
sandbox), ``security`` (token, same origin, POST only), ``serve`` (uvicorn)."""

__all__ = ["app", "pages", "review", "security", "serve", "sides", "views"]
