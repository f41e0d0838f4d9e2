"""ReDoc at /redoc with every asset served by the app. fastapi-offline serves ReDoc's script locally, but that script
still draws its "API docs by Redocly" badge from cdn.redoc.ly: offline, a broken image. The app serves the same
script with the badge pointed at a local copy (service/static/redoc-logo.svg), read and rewritten once."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

OFFLINE_ASSETS = Path(fastapi_offline.__file__).parent / "static"
CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = "/static/redoc-logo.svg"
SCRIPT_PATH = "/redoc.standalone.js"


@cache
def redoc_script(root: str = "") -> bytes:
    """fastapi-offline's ReDoc bundle with its one CDN image served locally (root: the app's root_path)."""
    script = (OFFLINE_ASSETS / "redoc.standalone.js").read_bytes()
    return script.replace(CDN_LOGO.encode(), f"{root}{LOCAL_LOGO}".encode())


def add_redoc(app: FastAPI, favicon: str = "/static-offline-docs/favicon.png") -> None:
    """GET /redoc and its script; create the app with redoc_url=None so that fastapi-offline's page stays out."""

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{SCRIPT_PATH}", with_google_fonts=False,
                              redoc_favicon_url=f"{root}{favicon}")

    @app.get(SCRIPT_PATH, include_in_schema=False)
    async def redoc_js(request: Request) -> Response:
        return Response(redoc_script(request.scope.get("root_path", "")), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
