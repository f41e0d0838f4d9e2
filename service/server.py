"""`slr serve` and `slr-serve` (the serving image's entrypoint, which has no CLI room): uvicorn with the app
factory and the settings' host, port, log level and graceful timeout. uvicorn's own access log is off: the
service writes one line per request itself (`service.access`: request id, method, path, status, milliseconds, 499
for a client gone), and uvicorn's second line cost a cache hit about a tenth of its event-loop time."""
from __future__ import annotations

import argparse
import os

import uvicorn

from service.settings import get_settings


def run(host: str | None = None, port: int | None = None) -> None:
    settings = get_settings()
    uvicorn.run("service.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=settings.graceful_timeout_s,
                proxy_headers=True, access_log=False)


def main(argv: list[str] | None = None) -> None:
    """`slr-serve [--host H] [--port P] [--artifacts DIR]`: the server alone, for images without the CLI."""
    parser = argparse.ArgumentParser(prog="slr-serve", description="Serve the exported star model over HTTP.")
    parser.add_argument("--host", help="bind address (default: SLR_HOST)")
    parser.add_argument("--port", type=int, help="port (default: SLR_PORT)")
    parser.add_argument("--artifacts", help="artifacts root or version dir (default: SLR_ARTIFACTS)")
    args = parser.parse_args(argv)
    if args.artifacts:
        os.environ["SLR_ARTIFACTS"] = args.artifacts  # settings are read from the environment by the app factory
        get_settings.cache_clear()
    run(args.host, args.port)


if __name__ == "__main__":
    main()
