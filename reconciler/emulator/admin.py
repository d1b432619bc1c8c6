"""/_emulator/: seed S3 objects, inject faults, read the request log, configure, reset.

Per-API seeding (users, tokens, projects, stores, computations) lives in each API's
module under /_emulator/<api>/...
"""
from __future__ import annotations

import random
from dataclasses import asdict, fields
from typing import Callable

from starlette.requests import Request
from starlette.routing import Route

from reconciler.emulator.core import (
    Emulator,
    Fault,
    HTTPError,
    config_dict,
    json_response,
    read_json,
)
from reconciler.emulator.admin_index import KINDS
from reconciler.emulator.quirks import QUIRKS


def refusal(scope) -> tuple[int, str] | None:
    """Why an /_emulator/ request is refused, or None. A web page the developer opens can
    send a cross-site POST (text/plain or a form, no preflight) to a loopback port: admin
    requests with a foreign Origin, or a POST whose body is not JSON, are refused, so a
    page cannot reconfigure or reset the emulator. PUT and DELETE need a CORS preflight,
    which the emulator never grants."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
    origin = headers.get("origin")
    if origin is not None:
        from urllib.parse import urlsplit
        if origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
            return 403, "cross-origin requests to /_emulator/ are refused"
    if scope.get("method") == "POST":
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        if (media or has_body) and not (media == "application/json" or media.endswith("+json")):
            return 415, "a POST to /_emulator/ takes application/json"
    return None


class Admin:
    """The /_emulator/ routes, one method each."""

    def __init__(self, emu: Emulator, seed_all: Callable[[], None]) -> None:
        self.emu = emu
        self.seed_all = seed_all
    async def put_object(self, request: Request):
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        body = await request.body()
        self.emu.store.put_blob(f"{bucket}/{key}", body)
        return json_response({"bucket": bucket, "key": key, "size": len(body)})

    async def get_object(self, request: Request):
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        body = self.emu.store.get_blob(f"{bucket}/{key}")
        if body is None:
            raise HTTPError(404, {"detail": "no such object"})
        from starlette.responses import Response
        return Response(body, media_type="application/octet-stream")

    async def delete_object(self, request: Request):
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        self.emu.store.delete_blobs(f"{bucket}/{key}", exact=True)
        return json_response({"deleted": True})

    async def list_objects(self, request: Request):
        bucket = request.path_params["bucket"]
        prefix = request.query_params.get("prefix", "")
        items = self.emu.store.list_blobs(f"{bucket}/{prefix}")
        return json_response({"objects": [{"key": k[len(bucket) + 1:], "size": n} for k, n in items]})

    async def requests_log(self, request: Request):
        if request.method == "DELETE":
            self.emu.clear_log()
            return json_response({"cleared": True})
        body = {"total": len(self.emu.log), "counts": self.emu.counts()}
        if request.query_params.get("full") in ("1", "true"):
            body["log"] = self.emu.log
        return json_response(body)

    async def faults(self, request: Request):
        if request.method == "GET":
            return json_response({"faults": [asdict(f) for f in self.emu.faults]})
        if request.method == "DELETE":
            self.emu.faults.clear()
            return json_response({"cleared": True})
        body = await read_json(request)
        allowed = {f.name for f in fields(Fault)} - {"hits", "seen", "id"}
        if not isinstance(body, dict) or set(body) - allowed:
            raise HTTPError(400, {"detail": f"fault fields: {sorted(allowed)}"})
        fault = Fault(**body)
        self.emu.faults.append(fault)
        return json_response(asdict(fault), status=201)

    async def delete_fault(self, request: Request):
        self.emu.faults[:] = [f for f in self.emu.faults if f.id != request.path_params["id"]]
        return json_response({"deleted": True})

    async def config(self, request: Request):
        if request.method == "POST":
            body = await read_json(request)
            try:
                self.emu.config.update(body if isinstance(body, dict) else {})
                if isinstance(body, dict) and "seed" in body:  # a new seed restarts the fault sequence
                    self.emu.rng = random.Random(self.emu.config.seed)
            except (KeyError, TypeError, ValueError) as e:
                raise HTTPError(400, {"detail": f"bad config field: {e}"})
        return json_response(config_dict(self.emu.config))

    async def quirk_list(self, request: Request):
        return json_response({"quirks": dict(QUIRKS), "active": list(self.emu.config.quirks)})

    async def reset(self, request: Request):
        self.emu.store.clear()
        self.emu.faults.clear()
        self.emu.clear_log()
        self.seed_all()
        return json_response({"reset": True})

    async def docs(self, request: Request):
        """Raw emulator objects by kind: tests count duplicates with it."""
        kind = request.path_params.get("kind")
        if kind is None:
            with self.emu.store.lock:
                return json_response({k: len(v) for k, v in self.emu.store._docs.items()})
        if kind not in KINDS and not self.emu.store.count(kind):  # a kind a test stored counts too
            raise HTTPError(404, {"detail": f"no kind {kind!r}; the kinds are: {', '.join(KINDS)}"})
        return json_response({"items": self.emu.store.all(kind)})

    async def health(self, request: Request):
        return json_response({"ok": True})



def routes(emu: Emulator, seed_all: Callable[[], None]) -> list[Route]:
    api = Admin(emu, seed_all)
    return [
        Route("/_emulator/health", api.health),
        Route("/_emulator/s3/{bucket}", api.list_objects),
        Route("/_emulator/s3/{bucket}/{key:path}", api.put_object, methods=["PUT"]),
        Route("/_emulator/s3/{bucket}/{key:path}", api.get_object, methods=["GET"]),
        Route("/_emulator/s3/{bucket}/{key:path}", api.delete_object, methods=["DELETE"]),
        Route("/_emulator/requests", api.requests_log, methods=["GET", "DELETE"]),
        Route("/_emulator/faults", api.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/faults/{id}", api.delete_fault, methods=["DELETE"]),
        Route("/_emulator/config", api.config, methods=["GET", "POST"]),
        Route("/_emulator/quirks", api.quirk_list, methods=["GET"]),
        Route("/_emulator/reset", api.reset, methods=["POST"]),
        Route("/_emulator/docs", api.docs),
        Route("/_emulator/docs/{kind}", api.docs),
    ]
