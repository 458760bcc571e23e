"""Serving the web app: the built files of ``webapp/`` at ``/``, index.html for its routes.

The app is built with npm (``scripts/build-web.sh``, run by ``make run`` and ``make
test`` when the sources changed); the build output is not committed. Responses carry
a Content-Security-Policy that allows only the app's own scripts: generated text is
rendered without raw HTML, and even if some slipped through, no inline script runs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DIST = Path(__file__).with_name("webapp") / "dist"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# API and service paths are never the app's: they 404 as JSON rather than serve index.html
_NOT_APP = ("v1/", "docs", "openapi.json", "healthz", "readyz", "metrics", "assets/")

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Lectern</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>Lectern</h1><p>The web app has not been built. <code>make run</code> builds it
(or <code>scripts/build-web.sh</code>); the API is at <a href="/docs">/docs</a>.</p>"""


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class _CachedAssets:
    """The hashed assets: cached for a year, with the app's security headers.

    Wraps the mounted files only (pure ASGI): an HTTP middleware on the whole app
    (``@app.middleware``) would run a task group and a memory stream under every
    request, each open SSE stream included, for the sake of these headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = MutableHeaders(raw=message["headers"])
                headers["Cache-Control"] = "public, max-age=31536000, immutable"
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await self.app(scope, receive, send_secured)


def mount(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the built app from ``dist`` (its hashed assets cached for a year)."""
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", _CachedAssets(StaticFiles(directory=assets)), name="assets")

    root = dist.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    def app_page(path: str) -> Response:  # file checks block: FastAPI runs it in a thread
        if path.startswith(_NOT_APP):
            raise HTTPException(404, detail=f"/{path} not found")
        index = dist / "index.html"
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and root in candidate.parents:
            return _secured(FileResponse(candidate))  # favicon, robots.txt, ...
        if not index.is_file():
            return _secured(HTMLResponse(NOT_BUILT, status_code=503))
        response = FileResponse(index, headers={"Cache-Control": "no-cache"})
        return _secured(response)
