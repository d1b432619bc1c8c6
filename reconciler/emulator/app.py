"""The ASGI app: all three APIs on one port, each under its real paths, plus /_emulator/."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match

from reconciler.emulator import admin, admin_index, codeocean, valdi, valohai
from reconciler.emulator.core import Emulator, EmulatorConfig, Fault, HTTPError, sleep
from reconciler.emulator.store import Store

log = logging.getLogger("reconciler.emulator")
API_MODULES = (valdi, valohai, codeocean)


def create_app(data_dir: str | Path | None = None, config: EmulatorConfig | None = None) -> FaultsAndLog:
    store = Store(Path(data_dir) / "emulator.db" if data_dir else None)
    emu = Emulator(store, config or EmulatorConfig())
    routes = list(admin.routes(emu, seed_all=lambda: seed(emu)))
    for module in API_MODULES:
        routes.extend(module.routes(emu))
    routes.extend(admin_index.routes(routes))
    if store.count("_meta") == 0:
        seed(emu)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    async def starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            moved = _django_append_slash(app, request)
            if moved:
                return RedirectResponse(moved, status_code=301)
        body = {"detail": "Not found." if exc.status_code == 404 else exc.detail,
                "message": "Not found." if exc.status_code == 404 else exc.detail}
        return JSONResponse(body, status_code=exc.status_code)

    async def gone(request: Request, exc: Exception) -> Response:
        # the client died mid-request (a killed apply): nothing was done, nobody to answer
        return JSONResponse({"detail": "client disconnected", "message": "client disconnected"}, status_code=400)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("emulator handler failed")
        return JSONResponse({"detail": "internal error", "message": "internal error"}, status_code=500)

    app = Starlette(routes=routes, exception_handlers={
        HTTPError: http_error, HTTPException: starlette_error, ClientDisconnect: gone, Exception: crash})
    # A wrong trailing slash is a 404 (Code Ocean, VALDI), or Valohai's 301 below: never
    # Starlette's default 307, which a client follows with its body (no real server does).
    app.router.redirect_slashes = False
    app.state.emulator = emu
    return FaultsAndLog(app, emu)


def _django_append_slash(app: Starlette, request: Request) -> str | None:
    """Valohai is Django: a /api/v0/ path missing its trailing slash gets a 301 to the
    slashed one (APPEND_SLASH), whatever the method; a client that follows it re-sends a
    POST as a GET, so the body is lost. None when the slashed path is no route either."""
    path = request.url.path
    if not path.startswith("/api/v0/") or path.endswith("/"):
        return None
    scope = {**request.scope, "path": path + "/"}
    if all(route.matches(scope)[0] is Match.NONE for route in app.routes):  # the path, whatever the method
        return None
    return str(request.url.replace(path=path + "/"))


def seed(emu: Emulator) -> None:
    for module in API_MODULES:
        module.seed(emu)
    emu.store.put("_meta", "seeded", {"seeded": True})


class FaultsAndLog:
    """ASGI middleware: records every request with its route template, adds latency, and
    injects faults into API (not admin) requests."""

    def __init__(self, app: Starlette, emu: Emulator):
        self.app = app
        self.emu = emu
        self.state = app.state

    def _route_of(self, scope) -> str:
        for route in self.app.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "path", scope["path"])
        return scope["path"]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        route = self._route_of(scope)
        status_box = {"status": 0}
        if path.startswith("/_emulator"):
            refused = admin.refusal(scope)
            if refused:  # a web page's cross-site request: never reaches a handler
                return await JSONResponse({"detail": refused[1], "message": refused[1]},
                                          status_code=refused[0])(scope, receive, send)
            return await self.app(scope, receive, send)
        emu = self.emu
        await sleep(emu.config.latency_ms / 1000.0)
        picked = emu.pick_fault(method, path)
        fault, kind = picked if picked is not None else (Fault(), None)
        if isinstance(kind, int) and not isinstance(kind, bool) and kind >= 400:  # any error status
            headers = [(b"content-type", b"application/json")]
            if kind in (429, 503):  # a service that is down for a while says for how long
                headers.append((b"retry-after", str(fault.retry_after).encode()))
            body = json.dumps({"detail": "injected fault", "message": "injected fault"}).encode()
            await send({"type": "http.response.start", "status": kind, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            emu.record(method, route, path, kind, str(kind))
            return
        if kind in ODD_ANSWERS:  # a 200 the API never documents: a proxy's page, an empty envelope
            media, body = ODD_ANSWERS[kind]
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", media)]})
            await send({"type": "http.response.body", "body": body})
            emu.record(method, route, path, 200, kind)
            return
        if kind == "drop":
            await _drop(send)
            emu.record(method, route, path, 0, "drop")
            return
        if kind == "stall":
            await sleep(fault.stall_seconds)

        held: list = []

        async def capture(message):
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            if kind in ("drop_after", "stall_after"):
                held.append(message)  # the handler has acted; hold the answer back
                return
            await send(message)

        await self.app(scope, receive, capture)
        if kind == "drop_after":
            await _drop(send)
        elif kind == "stall_after":  # acted, answer delayed: a client killed now never learns
            emu.record(method, route, path, status_box["status"], kind)  # logged before the wait
            await sleep(fault.stall_seconds)
            for message in held:
                await send(message)
            return
        emu.record(method, route, path, status_box["status"], kind if kind else None)


# fault kinds answered 200 with a body no API documents: a gateway's or single sign-on
# proxy's HTML page, and a JSON object without the listing's key
ODD_ANSWERS = {"html": (b"text/html; charset=utf-8",
                        b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"),
               "empty_object": (b"application/json", b"{}")}


async def _drop(send) -> None:
    """Break the connection: promise a body, send less, end. The server closes the socket
    and the client sees a dropped connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise DroppedConnection()  # uvicorn aborts the response and closes the socket


class DroppedConnection(Exception):
    """Raised on purpose to make uvicorn close a connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
