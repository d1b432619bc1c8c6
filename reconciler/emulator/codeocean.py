"""The Code Ocean API (v1) in the emulator: data assets, their files, permissions and
transfer, and the custom metadata schema, under /api/v1/ with no trailing slash.

Auth is HTTP Basic with the access token as the user name and an empty password; 401
{"message"} otherwise. The SDK's extra headers (Min-Server-Version, Agent-Id, a JSON
Content-Type on body-less requests) are accepted and ignored. File URLs are signed
links the emulator serves without auth, as S3 presigned URLs are.

Admin seeding under /_emulator/codeocean/: users (with tokens), computations (whose
result files become result assets), the custom metadata schema. Object semantics and
search: codeocean_model.py. The contract: contracts/codeocean.md.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reconciler.emulator import codeocean_model as m
from reconciler.emulator.core import (
    SANDBOX,
    Emulator,
    HTTPError,
    empty_response,
    json_response,
    read_json,
    require_json_type,
)

API = "/api/v1"
FILES = "/codeocean-files"  # where signed file URLs point
URL_TTL = 3600
SANDBOX_COMPUTATION = "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"
SANDBOX_RESULTS = {
    "metrics.json": '{"accuracy": 0.93, "loss": 0.21}\n',
    "figures/loss.csv": "epoch,loss\n1,0.90\n2,0.45\n3,0.21\n",
}
_EMPTY_BODY = {"message": "the request body is empty; a JSON object is expected"}
_BAD_JSON = {"message": "the request body is not valid JSON"}


def seed(emu: Emulator) -> None:
    """A fresh sandbox: the sandbox user (an admin), one finished computation with a
    couple of result files, and the deployment's custom metadata schema."""
    store = emu.store
    user = m.add_user(store, SANDBOX["codeocean_email"], token=SANDBOX["codeocean_token"], admin=True,
                      user_id=SANDBOX["codeocean_user_id"])
    m.add_computation(store, user, SANDBOX_RESULTS, computation_id=SANDBOX_COMPUTATION, name="sandbox run",
                      now=time.time(), extra={"run_script": "code/run", "commit": "3f2a9c1e7b"})
    m.set_schema(store, m.DEFAULT_SCHEMA)


class CodeOceanAPI:
    """The public API: one method per route; the signing key lives as long as the process."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.signing_key = secrets.token_bytes(32)  # per process: file URLs die with it

    def authenticate(self, request: Request) -> dict:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise _unauthorized("no credentials: use HTTP Basic with your access token as the user name")
        try:
            token, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
        user = m.user_by_token(self.store, token) if token and not password else None
        if user is None:
            raise _unauthorized("invalid access token")
        return user

    async def body_of(self, request: Request):
        return await read_json(request, _BAD_JSON, allow_empty=True)

    async def json_body(self, request: Request):
        body = await request.body()
        if not body.strip():
            raise HTTPError(400, _EMPTY_BODY)
        return await read_json(request, _BAD_JSON)

    def current(self, doc: dict) -> dict:
        return m.settle(self.store, doc, self.emu.config.asset_ready_delay, time.time())

    def asset(self, request: Request, user: dict, need: tuple[str, ...] = ()) -> dict:
        return self.current(m.asset_for(self.store, user, request.path_params["id"], need))

    def shown(self, doc: dict) -> dict:
        body = m.render(self.store, doc)
        if self.emu.quirk("codeocean-no-archived"):
            body.pop("archived", None)
        if self.emu.quirk("codeocean-no-external") and isinstance(body.get("source_bucket"), dict):
            body["source_bucket"] = {k: v for k, v in body["source_bucket"].items() if k != "external"}
        return body

    def rendered(self, doc: dict) -> Response:
        return json_response(self.shown(doc))

    def sign(self, path: str, expires: int, disposition: str) -> str:
        return hmac.new(self.signing_key, f"{path}:{expires}:{disposition}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, request: Request, key: str, disposition: str) -> str:
        path = f"{FILES}/{quote(key)}"
        expires = int(time.time()) + URL_TTL
        return self.emu.url(request, path) + (f"?disposition={disposition}&expires={expires}"
                                         f"&signature={self.sign(path, expires, disposition)}")

    def readable_file(self, request: Request) -> dict:
        user = self.authenticate(request)
        doc = self.asset(request, user, need=m.USER_ROLES)
        path = request.query_params.get("path")
        if not path:
            raise m.bad("path: is required")
        return m.file_in(m.objects_of(self.store, doc), path)

    # -- data assets -------------------------------------------------------------------------------
    async def create(self, request: Request):
        user = self.authenticate(request)
        require_json_type(request, lambda media: {"message": f"Unsupported media type \"{media}\" in request."})
        body = await self.json_body(request)
        with self.store.lock:  # the ids of a combined asset must not vanish while it is made
            doc = m.create_asset(self.store, user, body, now=time.time())
        return self.rendered(doc)  # always "draft": creation runs in the background

    async def one(self, request: Request):
        user = self.authenticate(request)
        if request.method == "GET":
            return self.rendered(self.asset(request, user))
        if request.method == "PUT":
            body = await self.json_body(request)
            doc = self.asset(request, user, need=("owner", "editor"))
            return self.rendered(m.update_metadata(self.store, m.get_schema(self.store), doc, body,
                                              merge=self.emu.quirk("codeocean-metadata-merge")))
        m.delete_asset(self.store, self.asset(request, user, need=("owner",)))
        return empty_response()

    async def archive(self, request: Request):
        user = self.authenticate(request)
        doc = self.asset(request, user, need=("owner", "editor"))
        value = (request.query_params.get("archive") or "").lower()
        if value not in ("true", "false"):
            raise m.bad("archive: expected true or false in the query string")
        doc["archived"] = value == "true"
        self.store.put(m.ASSET, doc["id"], doc)
        return empty_response()

    async def search(self, request: Request):
        user = self.authenticate(request)
        params = m.parse_search(await self.body_of(request), m.get_schema(self.store))
        page, total = m.search(self.store, user, params, delay=self.emu.config.asset_ready_delay, now=time.time())
        end = params["offset"] + len(page)
        more = end < total and bool(page)
        return json_response({"has_more": more, "next_token": m.encode_token(end) if more else None,
                              "results": [self.shown(d) for d in page]})

    async def permissions(self, request: Request):
        user = self.authenticate(request)
        if request.method == "GET":
            return json_response(self.asset(request, user)["permissions"])
        body = await self.json_body(request)
        m.set_permissions(self.store, self.asset(request, user, need=("owner",)), body)
        return empty_response()

    async def files(self, request: Request):
        user = self.authenticate(request)
        body = m.obj(await self.body_of(request), "body") or {}
        path = m.text(body.get("path"), "path") or ""
        doc = self.asset(request, user, need=m.USER_ROLES)
        return json_response({"items": m.list_folder(m.objects_of(self.store, doc), path)})

    async def file_urls(self, request: Request):
        key = self.readable_file(request)["key"]
        return json_response({"download_url": self.signed_url(request, key, "attachment"),
                              "view_url": self.signed_url(request, key, "inline")})

    async def file_download_url(self, request: Request):  # deprecated by Code Ocean 4.0, still served
        return json_response({"url": self.signed_url(request, self.readable_file(request)["key"], "attachment")})

    async def transfer(self, request: Request):
        user = self.authenticate(request)
        if not user.get("admin"):
            raise m.forbidden("transferring a data asset is for admins only")
        body = await self.json_body(request)
        with self.store.lock:
            m.transfer(self.store, self.asset(request, user), body, now=time.time())
        return empty_response()

    async def custom_metadata(self, request: Request):
        self.authenticate(request)
        return json_response(m.get_schema(self.store))

    async def computation(self, request: Request):
        user = self.authenticate(request)
        doc = self.store.get(m.COMPUTATION, request.path_params["id"])
        if doc is None or (doc["owner"] != user["id"] and not user.get("admin")):
            raise m.not_found(f"computation {request.path_params['id']}")
        return json_response(m.render_computation(doc))

    async def file_blob(self, request: Request):
        """A signed file URL: no token, a signature instead."""
        q = request.query_params
        try:
            expires = int(q.get("expires", "0"))
        except ValueError:
            expires = 0
        disposition = q.get("disposition", "")
        if expires < time.time() or not hmac.compare_digest(
                q.get("signature", ""), self.sign(f"{FILES}/{quote(request.path_params['key'])}", expires, disposition)):
            raise HTTPError(403, {"message": "the link has expired or its signature does not match"})
        key = request.path_params["key"]
        body = self.store.get_blob(key)
        if body is None:
            raise HTTPError(404, {"message": "the file no longer exists"})
        name = key.rsplit("/", 1)[-1].replace('"', "")
        return Response(body, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'{disposition}; filename="{name}"'})



def routes(emu: Emulator) -> list[Route]:
    api = CodeOceanAPI(emu)
    return [
        Route(f"{API}/data_assets", api.create, methods=["POST"]),
        Route(f"{API}/data_assets/search", api.search, methods=["POST"]),
        Route(f"{API}/data_assets/{{id}}", api.one, methods=["GET", "PUT", "DELETE"]),
        Route(f"{API}/data_assets/{{id}}/archive", api.archive, methods=["PATCH"]),
        Route(f"{API}/data_assets/{{id}}/permissions", api.permissions, methods=["GET", "POST"]),
        Route(f"{API}/data_assets/{{id}}/files", api.files, methods=["POST"]),
        Route(f"{API}/data_assets/{{id}}/files/urls", api.file_urls),
        Route(f"{API}/data_assets/{{id}}/files/download_url", api.file_download_url),
        Route(f"{API}/data_assets/{{id}}/transfer", api.transfer, methods=["POST"]),
        Route(f"{API}/custom_metadata", api.custom_metadata),
        Route(f"{API}/computations/{{id}}", api.computation),
        Route(f"{FILES}/{{key:path}}", api.file_blob),
        *admin_routes(emu),
    ]


class CodeOceanAdmin:
    """/_emulator/codeocean/...: seed what the public API cannot create."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    async def body_of(self, request: Request) -> dict:
        body = await read_json(request, {"message": "a JSON object is expected"})
        if not isinstance(body, dict):
            raise m.bad("a JSON object is expected")
        return body

    async def users(self, request: Request):
        body = await self.body_of(request)
        email = m.needed(body.get("email"), "email")
        token = m.text(body.get("token"), "token", empty_ok=False)
        if m.user_by_email(self.store, email):
            raise m.bad(f"email: a user {email} exists")
        if token and m.user_by_token(self.store, token):
            raise m.bad("token: already in use")
        user = m.add_user(self.store, email, token=token, admin=bool(m.flag(body.get("admin"), "admin")))
        return json_response(user, status=201)

    async def computations(self, request: Request):
        body = await self.body_of(request)
        files = body.get("files") or {}
        if not isinstance(files, dict) or not all(isinstance(k, str) and k.strip("/") and isinstance(v, str)
                                                  for k, v in files.items()):
            raise m.bad("files: expected an object {path: text}")
        comp_id = m.text(body.get("id"), "id", empty_ok=False)
        if comp_id and self.store.get(m.COMPUTATION, comp_id):
            raise m.bad(f"id: computation {comp_id} exists")
        owner = m.user_by_email(self.store, m.text(body.get("owner"), "owner") or SANDBOX["codeocean_email"])
        if owner is None:
            raise m.bad(f"owner: no user {body.get('owner')}")
        extra = {k: m.text(body.get(k), k) for k in ("capsule_id", "commit", "run_script") if body.get(k)}
        doc = m.add_computation(self.store, owner, files, computation_id=comp_id,
                                name=m.text(body.get("name"), "name"), now=time.time(), extra=extra)
        return json_response(m.render_computation(doc), status=201)

    async def custom_metadata(self, request: Request):
        if request.method == "GET":
            return json_response(m.get_schema(self.store))
        return json_response(m.set_schema(self.store, await self.body_of(request)))



def admin_routes(emu: Emulator) -> list[Route]:
    api = CodeOceanAdmin(emu)
    return [
        Route("/_emulator/codeocean/users", api.users, methods=["POST"]),
        Route("/_emulator/codeocean/computations", api.computations, methods=["POST"]),
        Route("/_emulator/codeocean/custom_metadata", api.custom_metadata, methods=["GET", "PUT"]),
    ]


def _unauthorized(message: str) -> HTTPError:
    return HTTPError(401, {"message": message}, {"WWW-Authenticate": 'Basic realm="Code Ocean"'})
