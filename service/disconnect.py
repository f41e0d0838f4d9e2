"""Pure ASGI middleware: a request whose client disconnects before its answer starts is cancelled.

Neither uvicorn nor Starlette cancels a handler when its client goes away: the request would keep its
place in the batcher's queue and its engine work would run for nobody. Once the app has read the whole
request body, this middleware listens for `http.disconnect` and cancels the handler task, so its job
leaves the queue at once (service.batching drops cancelled jobs). Nothing changes for a client that stays.
"""
from __future__ import annotations

import asyncio
from typing import Any

from service.asgi import HttpMiddleware, Scope

# Set in the request's scope state when its client went away before the answer: nginx's 499 "client closed request"
# in the access log and the metrics, never a 500 (an alert on the 5xx rate must not page for a load test's end).
CLIENT_CLOSED = "client_closed"
CLIENT_CLOSED_STATUS = 499


def answered_status(scope: Scope, status: int | None) -> int:
    """The status a request ended with: the one sent, else 499 when its client went away, else 500 (the app
    raised before answering)."""
    if status is not None:
        return status
    return CLIENT_CLOSED_STATUS if scope.get("state", {}).get(CLIENT_CLOSED) else 500


class CancelOnDisconnect(HttpMiddleware):
    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        me = asyncio.current_task()
        watcher: asyncio.Future | None = None
        gone = asyncio.Event()
        started = cancelled_here = False

        async def watch() -> None:
            nonlocal cancelled_here
            message = await receive()  # blocks until the client goes away or the answer is complete
            if message["type"] == "http.disconnect":
                gone.set()
                if not started and me is not None:
                    cancelled_here = True
                    me.cancel()

        async def app_receive() -> dict[str, Any]:
            nonlocal watcher
            if watcher is not None:  # after the body only a disconnect can come; the watcher receives it
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                watcher = asyncio.ensure_future(watch())  # the body is read: from now on, listen
            return message

        async def app_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        # The app runs in this very task (no task per request); the watcher cancels this task.
        try:
            await self.app(scope, app_receive, app_send)
        except asyncio.CancelledError:
            if cancelled_here and me is not None and me.uncancel() == 0:
                scope.setdefault("state", {})[CLIENT_CLOSED] = True  # the access log and metrics say 499
                return  # nobody is waiting for an answer
            raise  # a cancellation from elsewhere (server shutdown): pass it on
        finally:
            if watcher is not None:
                watcher.cancel()
