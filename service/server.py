"""`slr serve`: uvicorn with the app factory and the settings' host, port, log level and graceful timeout."""
from __future__ import annotations

import uvicorn

from service.settings import get_settings


def run(host: str | None = None, port: int | None = None) -> None:
    settings = get_settings()
    uvicorn.run("service.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=settings.graceful_timeout_s,
                proxy_headers=True)
