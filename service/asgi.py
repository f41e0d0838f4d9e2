"""The base of the service's pure ASGI middleware: non-HTTP traffic (lifespan) passes straight through."""
from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


class HttpMiddleware:
    """Wraps an ASGI app; subclasses handle HTTP requests in `http`, everything else goes to the app untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        raise NotImplementedError
