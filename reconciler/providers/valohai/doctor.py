"""`reconciler doctor` for Valohai: the token, the project, and every listing a plan reads
(stores, datums, aliases) with the fields the kinds read in each. GETs only."""
from __future__ import annotations

from typing import Any

from reconciler.providers.doctor import Checks, Finding
from reconciler.providers.valohai.client import ValohaiClient
from reconciler.providers.valohai.properties import read_properties

STR = (str,)


def doctor(api: ValohaiClient) -> list[Finding]:
    c = Checks("valohai")
    me = c.call("GET /api/v0/users/me/", lambda: _get(api, "/api/v0/users/me/"))
    if me is None:
        return c.findings  # the token is refused: nothing else can be asked
    if c.fields("GET /api/v0/users/me/", "the user", me, {"id": (int, str), "username": STR}):
        c.ok("GET /api/v0/users/me/", "the token works")
    project = c.call("project", lambda: api.project)
    if project is None:
        return c.findings
    found = c.call("GET /api/v0/projects/{id}/", lambda: _get(api, f"/api/v0/projects/{project}/"))
    if found is not None and c.fields("GET /api/v0/projects/{id}/", "the project", found, {"id": STR, "name": STR}):
        c.ok("GET /api/v0/projects/{id}/", "the project is visible")
    stores = _page(c, api, "GET /api/v0/stores/", "/api/v0/stores/", {}, bare_ok="valohai-stores-bare-list")
    good = [s for s in stores if c.fields("GET /api/v0/stores/", "a store", s, {"id": STR, "name": STR})]
    for s in good:
        if not isinstance((s.get("configuration") or {}).get("bucket"), str):
            c.note("GET /api/v0/stores/", f"store {s['name']} shows no configuration.bucket: URLs cannot be "
                                          "checked against it at plan time")
    if len(good) == len(stores):
        c.ok("GET /api/v0/stores/", f"{len(stores)} store(s)")
    _datums(c, api, _page(c, api, "GET /api/v0/data/", "/api/v0/data/",
                          {"project": project, "deleted": "false", "ordering": "-ctime"}))
    aliases = _page(c, api, "GET /api/v0/datum-aliases/", "/api/v0/datum-aliases/", {"project": project})
    if all(c.fields("GET /api/v0/datum-aliases/", "an alias", a, {"name": STR, "datum": (dict, str, type(None))})
           for a in aliases):
        c.ok("GET /api/v0/datum-aliases/", f"{len(aliases)} alias(es) on the first page")
    return c.findings


def _get(api: ValohaiClient, path: str, params: dict | None = None) -> Any:
    api._need_token()
    return api.http.request("GET", path, params=params)


def _page(c: Checks, api: ValohaiClient, check: str, path: str, params: dict, bare_ok: str | None = None) -> list:
    """The first page of a listing (up to 50 items)."""
    body = c.call(check, lambda: _get(api, path, {**params, "limit": 50, "offset": 0}))
    if body is None:
        return []
    if isinstance(body, list):
        if bare_ok:
            c.note(check, "a bare list, not a DRF page {count, next, results}", bare_ok)
        else:
            c.problem(check, "a bare list, not a DRF page {count, next, results}")
        return body
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        c.problem(check, "the answer has no list `results`")
        return []
    return body["results"]


def _datums(c: Checks, api: ValohaiClient, datums: list) -> None:
    check = "GET /api/v0/data/"
    good = [d for d in datums if c.fields(check, "a datum", d, {"id": STR, "uri": (str, type(None))})]
    if not datums:
        c.note(check, "the project has no datums yet: their shape is checked on a later run")
        return
    if any("metadata" not in d or "tags" not in d for d in good):
        missing = sorted({f for d in good for f in ("metadata", "tags") if f not in d})
        c.note(check, f"datums carry no {' or '.join(missing)}: plans compare them with what was last applied",
               "valohai-metadata-absent")
    shapes = {type(d["metadata"]).__name__ for d in good if "metadata" in d}
    if "list" in shapes:
        c.note(check, "datum `metadata` is a list of {key, value} pairs", "valohai-metadata-list")
    for d in good:
        if "metadata" in d and c.call(check, lambda: read_properties(d["metadata"])) is None:
            break
        if "tags" in d and not isinstance(d["tags"], list):
            c.problem(check, f"datum `tags` is {type(d['tags']).__name__}, not a list")
            break
        if "tags" in d and any(isinstance(t, dict) for t in d["tags"]):
            c.note(check, "datum `tags` are objects {name}: read by their name", "valohai-tags-objects")
            break
    else:
        if len(good) == len(datums):
            c.ok(check, f"{len(datums)} datum(s) on the first page")
