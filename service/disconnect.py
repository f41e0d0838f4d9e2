"""Pure ASGI middleware: a request whose client disconnects before its answer starts is cancelled.

Neither uvicorn nor Starlette cancels a handler when its client goes away: the request would keep its
place in the batcher's queue and its engine work would run for nobody. Once the app has read the whole
request body, this middleware listens for `http.disconnect` and cancels the handler task, so its job
leaves the queue at once (service.batching drops cancelled jobs). Nothing changes for a client that stays.
"""
from __future__ import annotations

import asyncio
from typing import Any

Scope = dict[str, Any]


class CancelOnDisconnect:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read, gone = asyncio.Event(), asyncio.Event()
        started = cancelled_here = False

        async def app_receive() -> dict[str, Any]:
            if body_read.is_set():  # after the body only a disconnect can come; the watcher receives it
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, app_receive, app_send))

        async def watch() -> None:
            nonlocal cancelled_here
            await body_read.wait()
            message = await receive()  # blocks until the client goes away or the answer is complete
            if message["type"] == "http.disconnect":
                gone.set()
                if not started and not task.done():
                    cancelled_here = True
                    task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({task})
            if task.cancelled() and cancelled_here:
                return  # nobody is waiting for an answer
            task.result()
        except asyncio.CancelledError:  # this request itself is cancelled (server shutdown): pass it on
            task.cancel()
            raise
        finally:
            watcher.cancel()
