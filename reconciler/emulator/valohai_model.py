"""Valohai's objects in the emulator: users, projects, stores, datums, aliases, executions.

Documents live in the shared Store (kinds prefixed `vh_`), so they survive a restart.
Handlers in valohai.py call these functions; nothing here knows about HTTP except
`HTTPError`, which carries Valohai's own error shapes.

Shapes chosen where the API reference says [UNKNOWN] (see the report of issue 3/5):
* datum `metadata` is an OBJECT of the free-form properties; `valohai.tags` and
  `valohai.alias` are not kept among them: they become `tags` (a list) and aliases.
* datum `project` and `store` are small objects {id, name}.
* `valohai.tags` REPLACES the datum's tags; `valohai.alias: null` detaches every alias
  that points at the datum (history kept).
Each other plausible answer is a named quirk (quirks.py): metadata as a list or absent,
tags added, alias null refused, per-datum batches, bulk adopt refused, per-store adopt.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable

from reconciler.emulator.core import HTTPError, iso_z, time_ordered_uuid
from reconciler.emulator.store import Store

USER, TOKEN, PROJECT, STORE, DATUM, ALIAS, EXECUTION = (
    "vh_user", "vh_token", "vh_project", "vh_store", "vh_datum", "vh_alias", "vh_execution")

RESERVED_TAGS, RESERVED_ALIAS = "valohai.tags", "valohai.alias"


def not_found() -> HTTPError:
    return HTTPError(404, {"detail": "Not found."})


def bad(field: str, message: str, code: str | None = "invalid") -> HTTPError:
    """A DRF-style field error that also carries Valohai's {message, code} object."""
    return HTTPError(400, {field: [{"message": message, "code": code}]})


# -- users and projects ---------------------------------------------------------------
def add_user(store: Store, username: str, *, user_id: int | None = None, password: str | None = None,
             token: str | None = None, email: str | None = None) -> dict:
    if user_id is None:
        user_id = max([u["id"] for u in store.iter_raw(USER)] or [0]) + 1
    user = {"id": user_id, "username": username, "email": email or f"{username}@valohai.example",
            "first_name": "", "last_name": "", "password": password}
    store.put(USER, str(user_id), user)
    if token:
        store.put(TOKEN, token, {"user": user_id, "token": token})
    return user


def user_by_name(store: Store, username: str) -> dict | None:
    return next((u for u in store.iter_raw(USER) if u["username"] == username), None)


def public_user(user: dict) -> dict:
    return {k: user[k] for k in ("id", "username", "email", "first_name", "last_name")}


def add_project(store: Store, name: str, owner: dict, *, project_id: str | None = None,
                description: str = "") -> dict:
    now = iso_z()
    project = {"id": project_id or time_ordered_uuid(), "name": name, "description": description,
               "owner": {"id": owner["id"], "username": owner["username"]}, "ctime": now, "mtime": now,
               "yaml_path": "valohai.yaml", "environment_variables": {},
               "execution_summary": {"count": 0}}
    store.put(PROJECT, str(project["id"]), project)
    return project


def render_project(project: dict, base: str) -> dict:
    return {**project, "url": f"{base}/api/v0/projects/{project['id']}/",
            "urls": {"display": f"{base}/p/{project['owner']['username']}/{project['name']}/"}}


def visible_project(store: Store, user: dict, project_id: str) -> dict:
    """The project if the user may see it (owners only, in the emulator), else 404."""
    project = store.get(PROJECT, str(project_id))
    if project is None or project["owner"]["id"] != user["id"]:
        raise not_found()
    return project


def project_ids_of(store: Store, user: dict) -> set[str]:
    return {p["id"] for p in store.iter_raw(PROJECT) if p["owner"]["id"] == user["id"]}


# -- stores ---------------------------------------------------------------------------
def add_store(store: Store, name: str, bucket: str, owner: dict, *, store_id: str | None = None,
              project_id: str | None = None, region: str = "us-east-1") -> dict:
    now = iso_z()
    doc = {"id": store_id or time_ordered_uuid(), "name": name, "type": "s3",
           "access_mode": "single_project" if project_id else "owner_organization",
           "allow_read": True, "allow_write": True, "allow_adopt": True, "allow_uri_download": True,
           "configuration": {"bucket": bucket, "region": region},
           "owner": owner["id"], "project": project_id, "paths": {}, "teams": [],
           "uri_prefix": f"s3://{bucket}/", "ctime": now, "mtime": now, "deleted": False}
    store.put(STORE, doc["id"], doc)
    return doc


def visible_stores(store: Store, user: dict) -> list[dict]:
    mine = project_ids_of(store, user)
    return [s for s in store.iter_raw(STORE)
            if s["owner"] == user["id"] or (s.get("project") in mine)]


# -- datums -----------------------------------------------------------------------------
def split_s3(url: str) -> tuple[str, str] | None:
    if not isinstance(url, str) or not url.startswith("s3://"):
        return None
    bucket, _, key = url[5:].partition("/")
    return (bucket, key) if bucket and key else None


def new_datum(store: Store, *, project: dict, store_doc: dict, uri: str, body: bytes,
              name: str | None = None, output_execution: dict | None = None) -> dict:
    now = iso_z()
    datum = {"id": time_ordered_uuid(), "name": name or uri.rsplit("/", 1)[-1], "size": len(body),
             "ctime": now, "mtime": now, "file_ctime": now, "file_mtime": now, "uri": uri,
             "sha256": hashlib.sha256(body).hexdigest(), "md5": hashlib.md5(body).hexdigest(),
             "output_execution": output_execution, "tags": [], "metadata": {},
             "project": {"id": project["id"], "name": project["name"]},
             "store": {"id": store_doc["id"], "name": store_doc["name"]} if store_doc else None,
             "purged": False, "deleted": False}
    store.put(DATUM, str(datum["id"]), datum)
    return datum


def render_datum(datum: dict, base: str) -> dict:
    return {**datum, "url": f"{base}/api/v0/data/{datum['id']}/"}


def adopt(store: Store, store_doc: dict, project: dict, urls: list[str],
          per_store: bool = False) -> tuple[dict, list[dict]]:
    """Adopt every URL or none: ({url: datum_id}, errors). Errors name the URL. A URL is
    taken when a datum of the project has it (or, `per_store`, any datum of the store)."""
    bucket = store_doc["configuration"]["bucket"]
    taken = {d["uri"] for d in store.iter_raw(DATUM)
             if not d.get("purged") and (d["project"]["id"] == project["id"] if not per_store
                                         else (d.get("store") or {}).get("id") == store_doc["id"])}
    errors: list[dict[str, Any]] = []
    bodies: dict[str, bytes] = {}
    for url in urls:
        parts = split_s3(url)
        if parts is None or parts[0] != bucket:
            errors.append({"url": url, "message": f"{url} is not a URL in {store_doc['name']} "
                           f"(s3://{bucket}/...)", "code": "invalid_url"})
        elif url in taken or url in bodies:
            errors.append({"url": url, "message": f"{url} already exists in {store_doc['name']}",
                           "code": None})
        else:
            body = store.get_blob(f"{bucket}/{parts[1]}")
            if body is None:
                errors.append({"url": url, "message": f"Not found in {store_doc['name']}: '{url}'",
                               "code": "adoptable_file_not_found"})
            else:
                bodies[url] = body
    if errors:
        return {}, errors
    created = {}
    for url, body in bodies.items():
        created[url] = new_datum(store, project=project, store_doc=store_doc, uri=url, body=body)["id"]
    return created, []


def list_datums(store: Store, project_ids: set[str], params) -> list[dict]:
    """Datums the filters select, oldest first unless ordering asks otherwise. Raw docs:
    callers copy only the page they return."""
    project = params.get("project")
    if project and project not in project_ids:
        return []
    wanted = {project} if project else project_ids
    execution = params.get("output_execution") or params.get("execution")
    tag = params.get("tag")
    deleted = params.get("deleted")
    out = []
    for d in store.iter_raw(DATUM):
        if d["project"]["id"] not in wanted:
            continue
        if execution and (d["output_execution"] or {}).get("id") != execution:
            continue
        if tag and tag not in d["tags"]:
            continue
        if deleted in ("false", "False", "0") and d.get("deleted"):
            continue
        out.append(d)
    ordering = params.get("ordering") or ""
    field = ordering.lstrip("-")
    if field in ("ctime", "mtime", "name", "size"):
        out.sort(key=lambda d: (d[field], d["id"]), reverse=ordering.startswith("-"))
    return out


def check_metadata(props: Any, where: str, *, alias_null_ok: bool = True) -> dict:
    if not isinstance(props, dict):
        raise HTTPError(400, {"message": f"{where}: expected a JSON object of properties", "code": "invalid"})
    tags = props.get(RESERVED_TAGS)
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise HTTPError(400, {"message": f"{where}: {RESERVED_TAGS} must be a list of strings",
                              "code": "invalid"})
    alias = props.get(RESERVED_ALIAS)
    if alias is None and RESERVED_ALIAS in props and not alias_null_ok:
        raise HTTPError(400, {"message": f"{where}: {RESERVED_ALIAS} must be a string", "code": "invalid"})
    if alias is not None and not (isinstance(alias, str) and alias.strip()):
        raise HTTPError(400, {"message": f"{where}: {RESERVED_ALIAS} must be one string, not a list",
                              "code": "invalid"})
    return props


def apply_metadata(store: Store, datum: dict, props: dict, *, tags_add: bool = False,
                   alias_null_ignored: bool = False) -> dict:
    """Merge properties into one datum (null removes a key); tags and alias are special:
    `valohai.tags` replaces the tags (or, `tags_add`, adds to them)."""
    for key, value in props.items():
        if key == RESERVED_TAGS:
            datum["tags"] = list(dict.fromkeys((datum["tags"] if tags_add else []) + list(value or [])))
        elif key == RESERVED_ALIAS:
            if value is None:
                if not alias_null_ignored:
                    detach_aliases(store, datum)
            else:
                point_alias(store, datum["project"]["id"], value, datum["id"])
        elif value is None:
            datum["metadata"].pop(key, None)
        else:
            datum["metadata"][key] = value
    datum["mtime"] = iso_z()
    store.put(DATUM, str(datum["id"]), datum)
    return datum


def datums_found(store: Store, ids: Iterable[Any], project_ids: set[str]) -> tuple[list[dict], list[str]]:
    """(copies of the datums found, the ids not found)."""
    found, missing = [], []
    for id_ in ids:
        doc = store.get(DATUM, str(id_)) if isinstance(id_, str) else None
        if doc is None or doc["project"]["id"] not in project_ids:
            missing.append(str(id_))
        else:
            found.append(doc)
    return found, missing


def datums_for_write(store: Store, ids: Iterable[Any], project_ids: set[str]) -> list[dict]:
    """Copies of the datums, all or nothing: an unknown id is a 400 naming it."""
    found, missing = datums_found(store, ids, project_ids)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise HTTPError(400, {"message": f"Datums not found: {shown}", "code": "datum_not_found"})
    return found


# -- aliases ----------------------------------------------------------------------------
def alias_by_name(store: Store, project_id: str, name: str) -> dict | None:
    return next((a for a in store.iter_raw(ALIAS)
                 if a["project"] == project_id and a["name"] == name), None)


def point_alias(store: Store, project_id: str, name: str, datum_id: str | None) -> dict:
    """Create the alias or move it; every change is kept in its history."""
    now = iso_z()
    found = alias_by_name(store, project_id, name)
    alias = dict(found) if found else {"id": time_ordered_uuid(), "name": name, "project": project_id,
                                       "datum": None, "ctime": now, "mtime": now, "history": []}
    if found and alias["datum"] == datum_id:
        return alias
    alias["history"] = list(alias.get("history", [])) + [{"datum": datum_id, "time": now}]
    alias["datum"], alias["mtime"] = datum_id, now
    store.put(ALIAS, alias["id"], alias)
    return alias


def detach_aliases(store: Store, datum: dict) -> None:
    for alias in [a for a in store.iter_raw(ALIAS) if a["datum"] == datum["id"]]:
        point_alias(store, alias["project"], alias["name"], None)


def render_alias(store: Store, alias: dict, base: str) -> dict:
    project = store.get(PROJECT, alias["project"]) or {"id": alias["project"], "name": ""}
    datum = store.get(DATUM, alias["datum"]) if alias["datum"] else None
    return {"id": alias["id"], "name": alias["name"], "ctime": alias["ctime"], "mtime": alias["mtime"],
            "datum": render_datum(datum, base) if datum else None,
            "project": {"id": project["id"], "name": project["name"]},
            "history": alias.get("history", [])}


# -- executions (admin-seeded: their outputs are datums) -----------------------------------
def add_execution(store: Store, project: dict, store_doc: dict, outputs: list[dict],
                  counter: int | None = None, status: str = "complete") -> tuple[dict, list[dict]]:
    if counter is None:
        counter = 1 + max([e["counter"] for e in store.iter_raw(EXECUTION)
                           if e["project"] == project["id"]] or [0])
    execution = {"id": time_ordered_uuid(), "counter": counter, "status": status,
                 "project": project["id"], "ctime": iso_z(), "outputs": []}
    ref = {"id": execution["id"], "counter": counter}
    bucket = store_doc["configuration"]["bucket"]
    datums = []
    for out in outputs:
        body = out.get("content", "").encode() if "content" in out else b"\0" * int(out.get("size", 0))
        key = f"data/{execution['id'][:8]}/{execution['id']}/{out['name']}"
        store.put_blob(f"{bucket}/{key}", body)
        datum = new_datum(store, project=project, store_doc=store_doc, uri=f"s3://{bucket}/{key}",
                          body=body, name=out["name"], output_execution=ref)
        if out.get("properties") or out.get("tags") or out.get("alias"):
            props = dict(out.get("properties") or {})
            if out.get("tags"):
                props[RESERVED_TAGS] = out["tags"]
            if out.get("alias"):
                props[RESERVED_ALIAS] = out["alias"]
            datum = apply_metadata(store, datum, check_metadata(props, out["name"]))
        datums.append(datum)
    execution["outputs"] = [{"id": d["id"], "name": d["name"], "purged": False} for d in datums]
    store.put(EXECUTION, execution["id"], execution)
    return execution, datums

