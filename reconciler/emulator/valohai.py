"""The Valohai API (v0) in the emulator: every path under /api/v0/ with a trailing slash,
plus GET /api/v0/data/{id} without one (valohai-utils asks for that).

Auth is `Authorization: Token <token>` (scheme case-insensitive); 401 otherwise, with
`WWW-Authenticate: Token`. Lists use DRF limit/offset paging and honour any limit
exactly (valohai-cli pages by offset and stops on a short page). Downloads hand out a
signed URL the emulator serves without auth, as S3 presigned URLs are.

Admin seeding under /_emulator/valohai/: users (with tokens), tokens, projects, stores,
and executions whose outputs become datums. Object semantics: valohai_model.py.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Callable
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reconciler.emulator import valohai_model as m
from reconciler.emulator.core import (
    SANDBOX,
    Emulator,
    HTTPError,
    json_response,
    read_json,
    require_json_type,
)

API = "/api/v0"
DEFAULT_LIMIT = 100
SANDBOX_PASSWORD = "valohai-sandbox-pw-41c2"  # for POST /api/v0/get-token/ as user `sandbox`
SEED_OBJECTS = {
    "data/train.csv": b"x,y\n1,2\n2,4\n3,6\n4,8\n",
    "data/test.csv": b"x,y\n5,10\n6,12\n",
    "models/model.pkl": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01w\x94K\x02s.",
    # shards for the for_each example (examples/shards.yaml)
    "shards/p0.csv": b"x,y\n1,2\n",
    "shards/p1.csv": b"x,y\n2,4\n",
    "shards/p2.csv": b"x,y\n3,6\n",
    # for the README's count example
    "counted/c0.csv": b"x,y\n1,2\n",
    "counted/c1.csv": b"x,y\n2,4\n",
    "counted/c2.csv": b"x,y\n3,6\n",
}
_PARSE_ERROR = {"message": "JSON parse error: the body is not valid JSON", "code": "parse_error"}


def _media_error(media: str) -> dict:
    return {"detail": f'Unsupported media type "{media}" in request.', "code": "unsupported_media_type"}


def seed(emu: Emulator) -> None:
    """A fresh sandbox: user `sandbox` with its token, project `sandbox`, store
    `sandbox-store` over the bucket `sandbox-bucket` holding a few objects."""
    store = emu.store
    user = m.add_user(store, SANDBOX["valohai_username"], user_id=SANDBOX["valohai_user_id"],
                      password=SANDBOX_PASSWORD, token=SANDBOX["valohai_token"])
    project = m.add_project(store, SANDBOX["valohai_project_name"], user,
                            project_id=SANDBOX["valohai_project_id"], description="The sandbox project")
    m.add_store(store, SANDBOX["valohai_store_name"], SANDBOX["valohai_bucket"], user,
                store_id=SANDBOX["valohai_store_id"], project_id=project["id"])
    for key, body in SEED_OBJECTS.items():
        store.put_blob(f"{SANDBOX['valohai_bucket']}/{key}", body)


class ValohaiAPI:
    """The public API: one method per route; the signing key lives as long as the process."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.signing_key = secrets.token_bytes(32)  # per process: download URLs die with it

    def base(self, request: Request) -> str:
        return self.emu.url(request, "")

    def authenticate(self, request: Request) -> dict:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise HTTPError(401, {"detail": "Authentication credentials were not provided."},
                            {"WWW-Authenticate": "Token"})
        entry = self.store.get(m.TOKEN, token.strip()) if scheme.lower() == "token" and token.strip() else None
        user = self.store.get(m.USER, str(entry["user"])) if entry else None
        if user is None:
            raise HTTPError(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
        return user

    def page(self, request: Request, items: list, render) -> dict:
        q = request.query_params
        limit = _int(q.get("limit"), DEFAULT_LIMIT, minimum=1)
        offset = _int(q.get("offset"), 0, minimum=0)
        chunk = items[offset:offset + limit]
        url = request.url
        nxt = str(url.include_query_params(offset=offset + limit, limit=limit)) \
            if offset + limit < len(items) else None
        prev = str(url.include_query_params(offset=max(0, offset - limit), limit=limit)) if offset else None
        count = None if q.get("no_count") in ("true", "True", "1") else len(items)
        return {"count": count, "next": nxt, "previous": prev, "results": [render(i) for i in chunk]}

    def shown(self, datum: dict, base_url: str) -> dict:
        """A datum as the API renders it, in the shape the quirks ask for."""
        body = m.render_datum(datum, base_url)
        if self.emu.quirk("valohai-metadata-absent"):
            body.pop("metadata", None)
            body.pop("tags", None)
        elif self.emu.quirk("valohai-metadata-list"):
            body["metadata"] = [{"key": k, "value": v} for k, v in body["metadata"].items()]
        if self.emu.quirk("valohai-tags-objects") and isinstance(body.get("tags"), list):
            body["tags"] = [{"name": t} for t in body["tags"]]
        return body

    def datum_for(self, user: dict, datum_id: str) -> dict:
        datum = self.store.get(m.DATUM, datum_id)
        if datum is None or datum["project"]["id"] not in m.project_ids_of(self.store, user):
            raise m.not_found()
        return datum

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()

    # -- auth, user, projects -------------------------------------------------------
    async def get_token(self, request: Request):
        body = await read_json_or_form(request)
        username, password = body.get("username"), body.get("password")
        if not username or not password:
            raise HTTPError(400, {"non_field_errors": [{"message": "username and password are required",
                                                        "code": "required"}]})
        user = m.user_by_name(self.store, str(username))
        if user is None or not user.get("password") or not hmac.compare_digest(
                str(user["password"]), str(password)):
            raise HTTPError(400, {"non_field_errors": [{"message": "Unable to log in with provided "
                                                        "credentials.", "code": "authorization"}]})
        token = next((t["token"] for t in self.store.iter_raw(m.TOKEN) if t["user"] == user["id"]), None)
        if token is None:
            token = secrets.token_hex(20)
            self.store.put(m.TOKEN, token, {"user": user["id"], "token": token})
        return json_response({"token": token})

    async def me(self, request: Request):
        return json_response(m.public_user(self.authenticate(request)))

    async def projects(self, request: Request):
        user = self.authenticate(request)
        if request.method == "POST":
            body = await read_json_or_form(request)
            name = str(body.get("name") or "").strip()
            if not name:
                raise HTTPError(400, {"name": ["This field is required."]})
            if any(p["name"] == name and p["owner"]["id"] == user["id"] for p in self.store.iter_raw(m.PROJECT)):
                raise HTTPError(400, {"name": [f"You already have a project named {name}."]})
            project = m.add_project(self.store, name, user, description=str(body.get("description") or ""))
            return json_response(m.render_project(project, self.base(request)), status=201)
        items = [p for p in self.store.iter_raw(m.PROJECT) if p["owner"]["id"] == user["id"]]
        return json_response(self.page(request, items, lambda p: m.render_project(p, self.base(request))))

    async def ownership_options(self, request: Request):
        return json_response([self.authenticate(request)["username"]])

    async def project(self, request: Request):
        user = self.authenticate(request)
        return json_response(m.render_project(
            m.visible_project(self.store, user, request.path_params["id"]), self.base(request)))

    # -- stores and adoption -----------------------------------------------------------
    async def stores(self, request: Request):
        user = self.authenticate(request)
        if self.emu.quirk("valohai-stores-bare-list"):
            return json_response([dict(s) for s in m.visible_stores(self.store, user)])
        return json_response(self.page(request, m.visible_stores(self.store, user), dict))

    async def store_detail(self, request: Request):
        user = self.authenticate(request)
        found = [s for s in m.visible_stores(self.store, user) if s["id"] == request.path_params["id"]]
        if not found:
            raise m.not_found()
        return json_response(found[0])

    async def adopt(self, request: Request):
        user = self.authenticate(request)
        found = [s for s in m.visible_stores(self.store, user) if s["id"] == request.path_params["id"]]
        if not found:
            raise m.not_found()
        if found[0]["type"] != "s3" or not found[0].get("allow_adopt", True):
            raise HTTPError(400, {"message": f"Store {found[0]['name']} does not allow adoption "
                                             "(only S3 stores with allow_adopt)", "code": "adoption_not_allowed"})
        body = await read_json(request, _PARSE_ERROR)
        if not isinstance(body, dict):
            raise HTTPError(400, {"message": "expected a JSON object", "code": "invalid"})
        if "urls" in body and not self.emu.quirk("valohai-adopt-bulk"):  # seed 000: one `url`; DRF
            body = {k: v for k, v in body.items() if k != "urls"}  # ignores the unknown field
        if "url" not in body and "urls" not in body:
            raise HTTPError(400, {"url": ["This field is required."]})
        bulk = "urls" in body
        urls = body.get("urls") if bulk else [body.get("url")]
        field = "urls" if bulk else "url"
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
            raise m.bad(field, "url: a storage URL string is required" if not bulk
                        else "urls: a non-empty list of storage URL strings is required", "required")
        project_id = body.get("project")
        if not isinstance(project_id, str) or project_id not in m.project_ids_of(self.store, user):
            raise m.bad("project", f"Invalid project {project_id!r}", "invalid_project")
        project = self.store.get(m.PROJECT, project_id)
        if project is None:
            raise m.not_found()
        with self.store.lock:  # check-then-create must not interleave with another adopt
            created, errors = m.adopt(self.store, found[0], project, urls,
                                      per_store=self.emu.quirk("valohai-adopt-store-scoped"))
        if errors and self.emu.quirk("valohai-adopt-409") and all(e["code"] is None for e in errors):
            raise HTTPError(409, {field: [{**e, "message": f"Datum for {e['url']} exists", "code": "conflict"}
                                          for e in errors]})
        if errors:
            if not bulk:
                errors = [{"message": e["message"], "code": e["code"]} for e in errors]
            raise HTTPError(400, {field: errors})
        return json_response({"ok": True, "created": created})

    # -- data ------------------------------------------------------------------------------
    async def data_list(self, request: Request):
        user = self.authenticate(request)
        items = m.list_datums(self.store, m.project_ids_of(self.store, user), request.query_params)
        b = self.base(request)
        return json_response(self.page(request, items, lambda d: self.shown(d, b)))

    async def datum(self, request: Request):
        user = self.authenticate(request)
        return json_response(self.shown(self.datum_for(user, request.path_params["id"]), self.base(request)))

    async def download(self, request: Request):
        d = self.datum_for(self.authenticate(request), request.path_params["id"])
        parts = m.split_s3(d["uri"] or "")
        if d.get("purged") or parts is None:
            raise HTTPError(400, {"message": "The datum's file has been purged", "code": "purged"})
        path = f"/valohai-s3/{parts[0]}/{quote(parts[1])}"
        expires = int(time.time()) + 3600
        return json_response({"url": self.emu.url(request, path) +
                              f"?X-Amz-Expires={expires}&X-Amz-Signature={self.sign(path, expires)}"})

    async def blob(self, request: Request):
        """The presigned-style URL `download/` hands out: no token, a signature instead."""
        path = request.url.path
        try:
            expires = int(request.query_params.get("X-Amz-Expires", "0"))
        except ValueError:
            expires = 0
        given = request.query_params.get("X-Amz-Signature", "")
        if expires < time.time() or not hmac.compare_digest(given, self.sign(path, expires)):
            raise HTTPError(403, {"detail": "Request has expired or the signature does not match"})
        body = self.store.get_blob(f"{request.path_params['bucket']}/{request.path_params['key']}")
        if body is None:
            raise HTTPError(404, {"detail": "NoSuchKey"})
        return Response(body, media_type="application/octet-stream")

    async def purge(self, request: Request):
        user = self.authenticate(request)
        d = self.datum_for(user, request.path_params["id"])
        parts = m.split_s3(d["uri"] or "")
        if not d.get("purged") and parts:
            self.store.delete_blobs(f"{parts[0]}/{parts[1]}", exact=True)
        d["purged"] = True
        self.store.put(m.DATUM, d["id"], d)
        return json_response({"ok": True, "purged": [d["id"]]})

    # -- properties ("metadata") ------------------------------------------------------------
    async def metadata_one(self, request: Request):
        user = self.authenticate(request)
        d = self.datum_for(user, request.path_params["id"])
        require_json_type(request, _media_error)
        props = m.check_metadata(await read_json(request, _PARSE_ERROR), "body", **self.rules())
        with self.store.lock:
            doc = self.store.get(m.DATUM, d["id"])
            if doc is None:  # purged from the store in between
                raise m.not_found()
            m.apply_metadata(self.store, doc, props, **self.writes())
        return json_response({"ok": True, "updated": [d["id"]]})

    def rules(self) -> dict:
        return {"alias_null_ok": not self.emu.quirk("valohai-alias-null-refused")}

    def writes(self) -> dict:
        return {"tags_add": self.emu.quirk("valohai-tags-add"),
                "alias_null_ignored": self.emu.quirk("valohai-alias-null-ignored")}

    def apply_each(self, checked: Callable[[str], dict], ids: list, project_ids: set[str]):
        """All or nothing (a 400 naming the unknown ids), or per datum under the quirk."""
        with self.store.lock:
            if self.emu.quirk("valohai-metadata-per-datum"):
                docs, missing = m.datums_found(self.store, ids, project_ids)
            else:
                docs, missing = m.datums_for_write(self.store, ids, project_ids), []
            for doc in docs:
                m.apply_metadata(self.store, doc, checked(doc["id"]), **self.writes())
        body = {"ok": True, "updated": [d["id"] for d in docs]}
        if missing:
            body["errors"] = [{"datum": i, "message": f"Datum not found: {i}", "code": "datum_not_found"}
                              for i in missing]
        return json_response(body)

    async def metadata_apply(self, request: Request):
        user = self.authenticate(request)
        require_json_type(request, _media_error)
        body = await read_json(request, _PARSE_ERROR)
        per = body.get("datum_metadata") if isinstance(body, dict) else None
        if not isinstance(per, dict):
            raise m.bad("datum_metadata", "an object {datum_id: {properties}} is required", "required")
        checked = {k: m.check_metadata(v, f"datum_metadata.{k}", **self.rules()) for k, v in per.items()}
        return self.apply_each(checked.__getitem__, list(checked), m.project_ids_of(self.store, user))

    async def metadata_apply_all(self, request: Request):
        user = self.authenticate(request)
        require_json_type(request, _media_error)
        body = await read_json(request, _PARSE_ERROR)
        if not isinstance(body, dict):
            raise HTTPError(400, {"message": "expected a JSON object", "code": "invalid"})
        ids = body.get("datum_ids")
        if not isinstance(ids, list) or not ids:
            raise m.bad("datum_ids", "a non-empty list of datum ids is required", "required")
        props = m.check_metadata(body.get("metadata"), "metadata", **self.rules())
        return self.apply_each(lambda _id: props, ids, m.project_ids_of(self.store, user))

    # -- aliases -------------------------------------------------------------------------------
    async def aliases(self, request: Request):
        user = self.authenticate(request)
        mine = m.project_ids_of(self.store, user)
        wanted = request.query_params.get("project")
        items = [a for a in self.store.iter_raw(m.ALIAS)
                 if a["project"] in mine and (not wanted or a["project"] == wanted)]
        ordering = request.query_params.get("ordering") or ""
        if ordering.lstrip("-") in ("ctime", "mtime", "name"):
            items.sort(key=lambda a: a[ordering.lstrip("-")], reverse=ordering.startswith("-"))
        b = self.base(request)
        return json_response(self.page(request, items, lambda a: m.render_alias(self.store, a, b)))

    async def alias_resolve(self, request: Request):
        user = self.authenticate(request)
        name, project_id = request.query_params.get("name"), request.query_params.get("project")
        if not name or not project_id:
            raise HTTPError(400, {"message": "name and project are required", "code": "required"})
        if project_id not in m.project_ids_of(self.store, user):
            raise m.not_found()
        alias = m.alias_by_name(self.store, project_id, name)
        if alias is None or alias["datum"] is None:
            raise HTTPError(404, {"detail": "Not found.", "message": f"No datum alias {name!r}",
                                  "code": "alias_not_found"})
        datum = self.store.get(m.DATUM, alias["datum"])
        if datum is None:
            raise m.not_found()
        return json_response({"datum": self.shown(datum, self.base(request)),
                              "alias": m.render_alias(self.store, alias, self.base(request))})

    async def alias_detail(self, request: Request):
        user = self.authenticate(request)
        alias = self.store.get(m.ALIAS, request.path_params["id"])
        if alias is None or alias["project"] not in m.project_ids_of(self.store, user):
            raise m.not_found()
        return json_response(m.render_alias(self.store, alias, self.base(request)))

    # -- executions ---------------------------------------------------------------------------
    async def execution(self, request: Request):
        user = self.authenticate(request)
        ref = request.path_params["ref"]
        mine = m.project_ids_of(self.store, user)
        if ":" in ref:
            project_id, _, counter = ref.partition(":")
            found = [e for e in self.store.iter_raw(m.EXECUTION)
                     if e["project"] == project_id and str(e["counter"]) == counter and project_id in mine]
        else:
            found = [e for e in self.store.iter_raw(m.EXECUTION) if e["id"] == ref and e["project"] in mine]
        if not found:
            raise m.not_found()
        e = dict(found[0])
        if request.query_params.get("exclude") == "outputs":
            e.pop("outputs", None)
        return json_response(e)



def routes(emu: Emulator) -> list[Route]:
    api = ValohaiAPI(emu)
    return [
        Route(f"{API}/get-token/", api.get_token, methods=["POST"]),
        Route(f"{API}/users/me/", api.me),
        Route(f"{API}/projects/", api.projects, methods=["GET", "POST"]),
        Route(f"{API}/projects/ownership_options/", api.ownership_options),
        Route(f"{API}/projects/{{id}}/", api.project),
        Route(f"{API}/stores/", api.stores),
        Route(f"{API}/stores/{{id}}/", api.store_detail),
        Route(f"{API}/stores/{{id}}/adopt/", api.adopt, methods=["POST"]),
        Route(f"{API}/data/", api.data_list),
        Route(f"{API}/data/metadata/apply/", api.metadata_apply, methods=["POST"]),
        Route(f"{API}/data/metadata/apply-all/", api.metadata_apply_all, methods=["POST"]),
        Route(f"{API}/data/{{id}}/", api.datum),
        Route(f"{API}/data/{{id}}", api.datum),
        Route(f"{API}/data/{{id}}/download/", api.download),
        Route(f"{API}/data/{{id}}/download_url/", api.download),
        Route(f"{API}/data/{{id}}/purge/", api.purge, methods=["POST"]),
        Route(f"{API}/data/{{id}}/metadata/", api.metadata_one, methods=["POST"]),
        Route(f"{API}/datum-aliases/", api.aliases),
        Route(f"{API}/datum-aliases/resolve/", api.alias_resolve),
        Route(f"{API}/datum-aliases/{{id}}/", api.alias_detail),
        Route(f"{API}/executions/{{ref}}/", api.execution),
        Route("/valohai-s3/{bucket}/{key:path}", api.blob),
        *admin_routes(emu),
    ]


class ValohaiAdmin:
    """/_emulator/valohai/...: seed what the public API cannot create."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    async def body_of(self, request: Request) -> dict:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise HTTPError(400, {"detail": "expected a JSON object"})
        return body

    def owner(self, username: str | None) -> dict:
        user = m.user_by_name(self.store, username or SANDBOX["valohai_username"])
        if user is None:
            raise HTTPError(400, {"detail": f"no user {username!r}"})
        return user

    async def users(self, request: Request):
        body = await self.body_of(request)
        if not isinstance(body.get("username"), str) or m.user_by_name(self.store, body["username"]):
            raise HTTPError(400, {"detail": "username: a new user name is required"})
        token = body.get("token") or secrets.token_hex(20)
        user = m.add_user(self.store, body["username"], user_id=body.get("id"), password=body.get("password"),
                          token=token)
        return json_response({**m.public_user(user), "token": token}, status=201)

    async def tokens(self, request: Request):
        body = await self.body_of(request)
        user = self.owner(body.get("username"))
        token = body.get("token") or secrets.token_hex(20)
        self.store.put(m.TOKEN, str(token), {"user": user["id"], "token": str(token)})
        return json_response({"username": user["username"], "token": token}, status=201)

    async def projects(self, request: Request):
        body = await self.body_of(request)
        if not isinstance(body.get("name"), str):
            raise HTTPError(400, {"detail": "name is required"})
        project = m.add_project(self.store, body["name"], self.owner(body.get("owner")), project_id=body.get("id"),
                                description=str(body.get("description", "")))
        return json_response(project, status=201)

    async def stores(self, request: Request):
        body = await self.body_of(request)
        if not isinstance(body.get("name"), str) or not isinstance(body.get("bucket"), str):
            raise HTTPError(400, {"detail": "name and bucket are required"})
        doc = m.add_store(self.store, body["name"], body["bucket"], self.owner(body.get("owner")),
                          store_id=body.get("id"), project_id=body.get("project"))
        return json_response(doc, status=201)

    async def executions(self, request: Request):
        body = await self.body_of(request)
        project = self.store.get(m.PROJECT, str(body.get("project") or SANDBOX["valohai_project_id"]))
        store_doc = self.store.get(m.STORE, str(body.get("store") or SANDBOX["valohai_store_id"]))
        outputs = body.get("outputs", [])
        if project is None or store_doc is None:
            raise HTTPError(400, {"detail": "unknown project or self.store"})
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                    for o in outputs):
            raise HTTPError(400, {"detail": "outputs: a list of {name, content|size, properties?, "
                                            "tags?, alias?}"})
        with self.store.lock:
            execution, datums = m.add_execution(self.store, project, store_doc, outputs,
                                                counter=body.get("counter"),
                                                status=str(body.get("status", "complete")))
        b = self.emu.url(request, "")
        return json_response({"execution": execution, "datums": [m.render_datum(d, b) for d in datums]},
                             status=201)



def admin_routes(emu: Emulator) -> list[Route]:
    api = ValohaiAdmin(emu)
    return [
        Route("/_emulator/valohai/users", api.users, methods=["POST"]),
        Route("/_emulator/valohai/tokens", api.tokens, methods=["POST"]),
        Route("/_emulator/valohai/projects", api.projects, methods=["POST"]),
        Route("/_emulator/valohai/stores", api.stores, methods=["POST"]),
        Route("/_emulator/valohai/executions", api.executions, methods=["POST"]),
    ]


async def read_json_or_form(request: Request) -> dict:
    """The CLI posts form-encoded bodies to get-token/ and projects/; JSON elsewhere.
    Parsed with the stdlib: Starlette's form parser needs python-multipart."""
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        try:
            return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise HTTPError(400, _PARSE_ERROR)
    body = await read_json(request, _PARSE_ERROR, allow_empty=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HTTPError(400, {"message": "expected a JSON object", "code": "invalid"})
    return body


def _int(value, default: int, minimum: int) -> int:
    try:
        return max(minimum, int(value)) if value not in (None, "") else default
    except ValueError:
        return default
