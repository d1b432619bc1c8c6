"""Code Ocean's objects in the emulator: users, computations, the custom metadata schema,
and data assets with their files, permissions and lifecycle.

Documents live in the shared Store (kinds prefixed `co_`), so they survive a restart.
Handlers in codeocean.py call these functions; nothing here knows about HTTP except
`HTTPError`, which carries Code Ocean's {"message"} error shape.

Choices where the API reference is open (contracts/codeocean.md):
* `null` in a request is "not given", everywhere (the SDK sends every field); what seed
  003 marks required (aws prefix, keep_on_external_storage, public; permissions users,
  groups, everyone) is refused when not given.
* PUT replaces `custom_metadata` whole (quirk codeocean-metadata-merge: merges it).
* An asset's outcome (ready with files/size, or failed with a reason) is decided at
  create time; it shows once `asset_ready_delay` has passed, checked lazily on read.
* Internal assets own copies of their files (blob keys "codeocean-internal/<id>/...");
  external ones point at the objects in the user's bucket.
"""
from __future__ import annotations

import base64
import math
import re
import secrets
import uuid
from typing import Any

from reconciler.emulator.core import HTTPError
from reconciler.emulator.store import Store

USER, COMPUTATION, SCHEMA, ASSET = "co_user", "co_computation", "co_schema", "co_asset"
INTERNAL_BUCKET = "codeocean-internal"  # where internal assets keep their copied files
RESULTS_BUCKET = "codeocean-results"  # computations' result files
INPUT_BUCKET = "codeocean-input"  # the deployment's input bucket (source.aws.use_input_bucket)

TYPES = ("dataset", "result", "combined", "model")
USER_ROLES = ("owner", "editor", "viewer")
GROUP_ROLES = ("owner", "editor", "viewer", "discoverable")
EVERYONE_ROLES = ("viewer", "discoverable", "none")
FIELD_TYPES = ("string", "number", "date")
SOURCES = ("aws", "gcp", "computation", "cloud_workstation")

DEFAULT_SCHEMA = {
    "fields": [
        {"name": "modality", "type": "string", "allowed_values": ["MRI", "CT", "EEG", "genomics"]},
        {"name": "subjects", "type": "number", "range": {"min": 0, "max": 100000}},
        {"name": "collected", "type": "date"},
        {"name": "lab", "type": "string"},
    ],
    "categories": ["Research"],
}


# -- errors ---------------------------------------------------------------------------
def bad(message: str) -> HTTPError:
    return HTTPError(400, {"message": message})


def not_found(what: str = "data asset") -> HTTPError:
    return HTTPError(404, {"message": f"{what} not found"})


def forbidden(message: str) -> HTTPError:
    return HTTPError(403, {"message": message})


# -- reading request values (null = not given) -----------------------------------------
def obj(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(f"{where}: expected an object")
    return value


def text(value: Any, where: str, *, required: bool = False, empty_ok: bool = True) -> str | None:
    if value is None:
        if required:
            raise bad(f"{where}: is required")
        return None
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise bad(f"{where}: expected a non-empty string" if not empty_ok else f"{where}: expected a string")
    return value


def needed(value: Any, where: str) -> str:
    """A required non-empty string."""
    given = text(value, where, required=True, empty_ok=False)
    assert given is not None  # text() raised for a missing one
    return given


def flag(value: Any, where: str) -> bool | None:
    """A boolean; "true"/"false" strings too (the user docs' examples send them)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad(f"{where}: expected true or false")


def required_flag(value: Any, where: str, required: bool) -> bool | None:
    """A boolean the documents mark required (seed 003: keep_on_external_storage*, public*)."""
    if value is None and required:
        raise bad(f"{where}: is required (true or false)")
    return flag(value, where)


def strings(value: Any, where: str, *, required: bool = False) -> list[str] | None:
    if value is None:
        if required:
            raise bad(f"{where}: is required (a list of strings, may be empty)")
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"{where}: expected a list of strings")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def folder(path: str | None) -> str:
    """An S3 prefix or asset path as a folder: no leading or trailing slashes."""
    return (path or "").strip("/")


# -- users ----------------------------------------------------------------------------------
def add_user(store: Store, email: str, *, token: str | None = None, admin: bool = False,
             user_id: str | None = None) -> dict:
    user = {"id": user_id or str(uuid.uuid4()), "email": email, "token": token or f"cop_{secrets.token_hex(16)}",
            "admin": bool(admin)}
    store.put(USER, str(user["id"]), user)
    return user


def user_by_token(store: Store, token: str) -> dict | None:
    return next((u for u in store.iter_raw(USER) if secrets.compare_digest(u["token"], token)), None)


def user_by_email(store: Store, email: str) -> dict | None:
    return next((u for u in store.iter_raw(USER) if u["email"].lower() == email.lower()), None)


# -- the custom metadata schema -----------------------------------------------------------
def get_schema(store: Store) -> dict:
    return store.get(SCHEMA, "current") or {"fields": [], "categories": []}


def set_schema(store: Store, schema: Any) -> dict:
    schema = obj(schema, "body") or {}
    fields = schema.get("fields") or []
    if not isinstance(fields, list):
        raise bad("fields: expected a list")
    names = set()
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        f = obj(f, where)
        if f is None:
            raise bad(f"{where}: expected an object")
        needed(f.get("name"), f"{where}.name")
        if f["name"] in names:
            raise bad(f"{where}.name: duplicate field {f['name']!r}")
        names.add(f["name"])
        if f.get("type") not in FIELD_TYPES:
            raise bad(f"{where}.type: expected one of {', '.join(FIELD_TYPES)}")
        if f.get("allowed_values") is not None and not isinstance(f["allowed_values"], list):
            raise bad(f"{where}.allowed_values: expected a list")
        rng = obj(f.get("range"), f"{where}.range") or {}
        if any(v is not None and not is_number(v) for v in (rng.get("min"), rng.get("max"))):
            raise bad(f"{where}.range: min and max must be numbers")
    categories = strings(schema.get("categories"), "categories") or []
    doc = {"fields": fields, "categories": categories}
    store.put(SCHEMA, "current", doc)
    return doc


def check_custom_metadata(schema: dict, values: Any, where: str = "custom_metadata", *,
                          creating: bool = False) -> dict | None:
    """The map as given, or a 400 naming the first key that breaks the schema. Absent
    (null) is fine, except for required fields of a new asset."""
    values = obj(values, where)
    if values is None and not creating:
        return None
    values = values or {}
    fields = {f["name"]: f for f in schema.get("fields") or []}
    for key, value in values.items():
        field = fields.get(key)
        if field is None:
            raise bad(f"{where}.{key}: unknown custom metadata field (known: {', '.join(fields) or 'none'})")
        items = value if isinstance(value, list) and field.get("multiple") else [value]
        for item in items:
            _check_field_value(field, item, f"{where}.{key}")
    for name, field in fields.items():
        if field.get("required") and values.get(name) is None:
            raise bad(f"{where}.{name}: is required")
    return values


def _check_field_value(field: dict, value: Any, where: str) -> None:
    if value is None:
        return
    if field["type"] == "string":
        if not isinstance(value, str):
            raise bad(f"{where}: expected a string")
    elif not is_number(value):
        unit = "Unix seconds" if field["type"] == "date" else "a number"
        raise bad(f"{where}: expected {unit}")
    allowed = field.get("allowed_values")
    if allowed and value not in allowed:
        raise bad(f"{where}: {value!r} is not one of the allowed values {', '.join(map(str, allowed))}")
    rng = field.get("range") or {}
    if is_number(value) and ((rng.get("min") is not None and value < rng["min"])
                             or (rng.get("max") is not None and value > rng["max"])):
        raise bad(f"{where}: {value} is outside the range {rng.get('min')}..{rng.get('max')}")


# -- computations (admin-seeded; their result files feed result assets) -------------------------
def add_computation(store: Store, owner: dict, files: dict[str, str], *, computation_id: str | None = None,
                    name: str | None = None, now: float, extra: dict | None = None) -> dict:
    comp_id = computation_id or str(uuid.uuid4())
    for path, body in files.items():
        store.put_blob(f"{RESULTS_BUCKET}/{comp_id}/{folder(path)}", body.encode())
    doc = {"id": comp_id, "created": int(now), "name": name or f"Run {comp_id[:8]}", "owner": owner["id"],
           "owner_email": owner["email"], "run_time": 42, "state": "completed", "end_status": "succeeded",
           "exit_code": 0, "has_results": bool(files), "cloud_workstation": False,
           "files": {folder(p): len(b.encode()) for p, b in files.items()}, **(extra or {})}
    store.put(COMPUTATION, comp_id, doc)
    return doc


def render_computation(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "files"}


# -- access -----------------------------------------------------------------------------------
def shared_role(doc: dict, user: dict) -> str | None:
    """The role the asset's permissions give the user (admin powers aside)."""
    if doc["owner"] == user["id"]:
        return "owner"
    perms = doc["permissions"]
    for entry in perms["users"]:
        if entry["email"].lower() == user["email"].lower():
            return entry["role"]
    return perms["everyone"] if perms["everyone"] != "none" else None


def role_of(doc: dict, user: dict) -> str | None:
    return "owner" if user.get("admin") else shared_role(doc, user)


def asset_for(store: Store, user: dict, asset_id: str, need: tuple[str, ...] = ()) -> dict:
    """A copy of the asset the user may see (404 otherwise), 403 without a role in `need`."""
    doc = store.get(ASSET, asset_id)
    role = role_of(doc, user) if doc else None
    if role is None:
        raise not_found(f"data asset {asset_id}")
    if need and role not in need:
        raise forbidden(f"your role on data asset {asset_id} is {role}; this needs {' or '.join(need)}")
    assert doc is not None  # a role implies a document
    return doc


# -- creating assets ----------------------------------------------------------------------------
def create_asset(store: Store, user: dict, body: Any, *, now: float) -> dict:
    """Validate a POST /data_assets body and store the new asset (state draft)."""
    body = obj(body, "body")
    if body is None:
        raise bad("body: expected a JSON object")
    doc = {
        "id": str(uuid.uuid4()), "created": int(now), "created_ts": now, "last_used": 0,
        "name": needed(body.get("name"), "name"),
        "mount": needed(body.get("mount"), "mount"),
        "tags": strings(body.get("tags"), "tags", required=True),
        "description": text(body.get("description"), "description") or "",
        "custom_metadata": check_custom_metadata(get_schema(store), body.get("custom_metadata"), creating=True),
        "owner": user["id"], "owner_email": user["email"], "state": "draft",
        "files": None, "size": None, "failure_reason": None, "source_bucket": None, "provenance": None,
        "app_parameters": None, "nextflow_profile": None, "contained": [], "objects": [],
        "archived": False, "last_transferred": None, "transfer_error": None, "favorited_by": [],
        "permissions": {"users": [{"email": user["email"], "role": "owner"}], "groups": [],
                        "everyone": "none", "share_assets": False},
    }
    source = obj(body.get("source"), "source")
    ids = body.get("data_asset_ids")
    target = obj(body.get("target"), "target")
    if source is not None and ids is not None:
        raise bad("data_asset_ids: give either a source or data_asset_ids, not both")
    if ids is not None:
        if target is not None:
            raise bad("target: only allowed with a computation source")
        _combine(store, user, doc, ids)
    elif source is None:
        raise bad("source: is required (or data_asset_ids for a combined data asset)")
    else:
        given = [k for k in SOURCES if source.get(k) is not None]
        if len(given) != 1:
            raise bad(f"source: exactly one of {', '.join(SOURCES)} is required")
        kind = given[0]
        if target is not None and kind != "computation":
            raise bad("target: only allowed with a computation source")
        if kind in ("aws", "gcp"):
            _from_bucket(store, user, doc, kind, obj(source[kind], f"source.{kind}") or {})
        else:
            _from_computation(store, user, doc, kind, obj(source[kind], f"source.{kind}") or {}, target)
    info = obj(body.get("results_info"), "results_info")
    if info is not None and isinstance(source, dict) and any(source.get(k) for k in ("computation",
                                                                                    "cloud_workstation")):
        raise bad("results_info: only for results produced outside Code Ocean (not with a computation source)")
    _results_info(doc, info)
    store.put(ASSET, doc["id"], doc)
    return doc


def _from_bucket(store: Store, user: dict, doc: dict, kind: str, src: dict) -> None:
    where = f"source.{kind}"
    prefix = text(src.get("prefix"), f"{where}.prefix", required=kind == "aws")  # seed 003: prefix*
    if kind == "aws" and flag(src.get("use_input_bucket"), f"{where}.use_input_bucket"):
        if not user.get("admin"):
            raise forbidden(f"{where}.use_input_bucket: only admins may use the input bucket")
        bucket, external = INPUT_BUCKET, False  # "all aws properties ignored except prefix"
    else:
        bucket = needed(src.get("bucket"), f"{where}.bucket")
        external = bool(required_flag(src.get("keep_on_external_storage"), f"{where}.keep_on_external_storage",
                                      kind == "aws"))
        required_flag(src.get("public"), f"{where}.public", kind == "aws")  # the emulated S3 needs no credentials
        text(src.get("endpoint_name"), f"{where}.endpoint_name")
    doc["type"] = "dataset"
    doc["source_bucket"] = {"origin": kind, "bucket": bucket, "prefix": prefix, "external": external}
    found = bucket_objects(store, bucket, prefix)
    if not found:
        scheme = "s3" if kind == "aws" else "gs"
        _decide(doc, [], f"no objects found in {scheme}://{bucket}/{prefix or ''}")
        return
    if not external:  # an internal asset owns a copy of the files
        found = [_copy(store, o, f"{INTERNAL_BUCKET}/{doc['id']}") for o in found]
    _decide(doc, found)


def _from_computation(store: Store, user: dict, doc: dict, kind: str, src: dict, target: dict | None) -> None:
    where = f"source.{kind}"
    comp_id = needed(src.get("id"), f"{where}.id")
    path = text(src.get("path"), f"{where}.path", required=kind == "cloud_workstation",
                empty_ok=kind != "cloud_workstation")
    computation = store.get(COMPUTATION, comp_id)
    if computation is None:
        raise bad(f"{where}.id: computation {comp_id} not found")
    if computation["owner"] != user["id"] and not user.get("admin"):
        raise forbidden(f"{where}.id: computation {comp_id} belongs to another user")
    run_script = text(src.get("run_script"), f"{where}.run_script") if kind == "cloud_workstation" else None
    doc["type"] = "result" if kind == "computation" or run_script else "dataset"
    doc["provenance"] = {"computation": comp_id, "capsule": computation.get("capsule_id"),
                         "commit": computation.get("commit"),
                         "run_script": run_script or computation.get("run_script"),
                         "data_assets": computation.get("data_assets"), "docker_image": None}
    found = bucket_objects(store, RESULTS_BUCKET, f"{comp_id}/{folder(path)}")
    aws = obj((target or {}).get("aws"), "target.aws") if target else None
    if target is not None and aws is None:
        raise bad("target.aws: is required")
    if aws is not None:
        bucket = needed(aws.get("bucket"), "target.aws.bucket")
        prefix = text(aws.get("prefix"), "target.aws.prefix")
        doc["source_bucket"] = {"origin": "aws", "bucket": bucket, "prefix": prefix, "external": True}
        found = [_copy(store, o, f"{bucket}/{folder(prefix)}".rstrip("/")) for o in found]
    else:
        found = [_copy(store, o, f"{INTERNAL_BUCKET}/{doc['id']}") for o in found]
    _decide(doc, found, None if found else
            f"no result files found in computation {comp_id}" + (f" under {path}" if folder(path) else ""))


def _combine(store: Store, user: dict, doc: dict, ids: Any) -> None:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise bad("data_asset_ids: expected a non-empty list of data asset ids")
    for asset_id in dict.fromkeys(ids):
        part = store.get(ASSET, asset_id)
        if part is None or role_of(part, user) is None:
            raise bad(f"data_asset_ids: data asset {asset_id} not found")
        if part["type"] == "combined":
            raise bad(f"data_asset_ids: {asset_id} is a combined data asset and cannot be combined again")
    doc["type"] = "combined"
    doc["contained"] = list(dict.fromkeys(ids))
    doc["outcome"] = {"state": "ready", "failure_reason": None}


def _results_info(doc: dict, info: dict | None) -> None:
    """Lineage for results produced outside Code Ocean, echoed under provenance."""
    if info is None:
        return
    capsule = text(info.get("capsule_id"), "results_info.capsule_id")
    pipeline = text(info.get("pipeline_id"), "results_info.pipeline_id")
    if not capsule and not pipeline:
        raise bad("results_info.capsule_id: capsule_id or pipeline_id is required with results_info")
    params = info.get("parameters")
    if params is not None and not (isinstance(params, list) and all(isinstance(p, dict) for p in params)):
        raise bad("results_info.parameters: expected a list of {name, param_name, value}")
    version = info.get("version")
    if version is not None and not (is_number(version) or (isinstance(version, str) and version.isdigit())):
        raise bad("results_info.version: expected an integer")
    doc["provenance"] = {**(doc["provenance"] or {}), "capsule": capsule, "pipeline": pipeline,
                         "version": int(version) if version is not None else None,
                         "commit": text(info.get("commit"), "results_info.commit"),
                         "run_script": text(info.get("run_script"), "results_info.run_script"),
                         "data_assets": strings(info.get("data_assets"), "results_info.data_assets"),
                         "docker_image": None}
    if params:
        doc["app_parameters"] = [{"name": p.get("name") or p.get("param_name"), "value": p.get("value")}
                                 for p in params]
    doc["nextflow_profile"] = text(info.get("nextflow_profile"), "results_info.nextflow_profile")


def _decide(doc: dict, objects: list[dict], failure: str | None = None) -> None:
    doc["objects"] = objects
    doc["outcome"] = {"state": "failed" if failure else "ready", "failure_reason": failure}


def bucket_objects(store: Store, bucket: str, prefix: str | None) -> list[dict]:
    """The objects under a folder of the emulated S3: [{path (relative), size, key}]."""
    base = f"{bucket}/{folder(prefix)}".rstrip("/") + "/"
    return [{"path": key[len(base):], "size": size, "key": key}
            for key, size in store.list_blobs(base) if key != base]


def _copy(store: Store, item: dict, dest: str) -> dict:
    key = f"{dest}/{item['path']}"
    if key != item["key"]:
        store.put_blob(key, store.get_blob(item["key"]) or b"")
    return {**item, "key": key}


# -- the lifecycle: draft -> ready | failed, lazily ---------------------------------------------
def settle(store: Store, doc: dict, delay: float, now: float) -> dict:
    """The asset with its state as of `now`; a change is persisted once."""
    if doc["state"] != "draft" or now < doc["created_ts"] + delay:
        return doc
    if doc["type"] == "combined":
        parts = [settle(store, p, delay, now) for p in _parts(store, doc)]
        if any(p["state"] == "draft" for p in parts):
            return doc
        failed = [p for p in parts if p["state"] == "failed"]
        state = "failed" if failed else "ready"
        reason = f"contained data asset {failed[0]['name']} ({failed[0]['id']}) failed" if failed else None
        files, size = sum(p["files"] or 0 for p in parts), sum(p["size"] or 0 for p in parts)
    else:
        state, reason = doc["outcome"]["state"], doc["outcome"]["failure_reason"]
        files = len(doc["objects"]) if state == "ready" else None
        size = sum(o["size"] for o in doc["objects"]) if state == "ready" else None
    with store.lock:  # another request may have changed the asset since it was read
        fresh = store.get(ASSET, doc["id"])
        if fresh is None or fresh["state"] != "draft":
            return fresh or doc
        fresh.update(state=state, failure_reason=reason, files=files, size=size)
        store.put(ASSET, doc["id"], fresh)
    return fresh


def _parts(store: Store, doc: dict) -> list[dict]:
    return [p for p in (store.get(ASSET, i) for i in doc["contained"]) if p is not None]


def render(store: Store, doc: dict) -> dict:
    """The DataAsset the API returns: every key the SDK requires, null where absent."""
    contained = None
    if doc["type"] == "combined":
        contained = [{"id": p["id"], "mount": p["mount"], "size": p["size"]} for p in _parts(store, doc)]
    keys = ("id", "created", "name", "mount", "last_used", "owner", "owner_email", "state", "type",
            "description", "tags", "custom_metadata", "source_bucket", "files", "size", "provenance",
            "app_parameters", "nextflow_profile", "failure_reason", "archived", "last_transferred",
            "transfer_error")
    out = {k: doc.get(k) for k in keys}
    out["contained_data_assets"] = contained
    return out


# -- changing assets ------------------------------------------------------------------------------
def update_metadata(store: Store, schema: dict, doc: dict, body: Any, *, merge: bool = False) -> dict:
    """PUT: the given fields replace the asset's (null: not given). `custom_metadata`
    replaces the whole map, or with `merge` is merged into it (a null value removes a key)."""
    body = obj(body, "body")
    if body is None:
        raise bad("body: expected a JSON object")
    for key in ("name", "description", "tags", "mount"):  # seed 003 Update Metadata: all four required
        if body.get(key) is None:
            raise bad(f"{key}: is required (name, description, tags and mount are all required)")
    changes: dict[str, Any] = {
        "name": text(body.get("name"), "name", empty_ok=False),
        "description": text(body.get("description"), "description"),
        "tags": strings(body.get("tags"), "tags"),
        "mount": text(body.get("mount"), "mount", empty_ok=False),
    }
    given = check_custom_metadata(schema, body.get("custom_metadata"))
    if given is not None:
        base = dict(doc.get("custom_metadata") or {}) if merge else {}
        base.update(given)
        changes["custom_metadata"] = {k: v for k, v in base.items() if v is not None}
    doc.update({k: v for k, v in changes.items() if v is not None})
    store.put(ASSET, doc["id"], doc)
    return doc


def containers_of(store: Store, asset_id: str) -> list[dict]:
    return [d for d in store.iter_raw(ASSET) if asset_id in d["contained"]]


def delete_asset(store: Store, doc: dict) -> None:
    with store.lock:  # no combined asset may take it in between the check and the delete
        users = containers_of(store, doc["id"])
        if users:
            raise bad(f"data asset {doc['name']} ({doc['id']}) is used by combined data asset "
                      f"{users[0]['name']}")
        store.delete(ASSET, doc["id"])
        store.delete_blobs(f"{INTERNAL_BUCKET}/{doc['id']}/")


def set_permissions(store: Store, doc: dict, body: Any) -> dict:
    body = obj(body, "body")
    if body is None:
        raise bad("body: expected a JSON object")
    perms = doc["permissions"]
    missing = [k for k in ("users", "groups", "everyone") if k not in body]
    if missing:  # seed 003: users*, groups*, everyone*; share_assets optional
        raise bad(f"{missing[0]}: is required (users, groups and everyone are all required)")
    # the SDK sends null for what it leaves unset: null reads as empty
    body = {**body, **{k: v for k, v in (("users", []), ("groups", []), ("everyone", "none"))
                       if body.get(k) is None}}
    users = body.get("users")
    if users is not None:
        if not isinstance(users, list):
            raise bad("users: expected a list of {email, role}")
        for i, u in enumerate(users):
            if not isinstance(u, dict) or not isinstance(u.get("email"), str) or not u["email"]:
                raise bad(f"users[{i}].email: is required")
            if u.get("role") not in USER_ROLES:
                raise bad(f"users[{i}].role: {u.get('role')!r} is not one of {', '.join(USER_ROLES)}")
        perms["users"] = [{"email": u["email"], "role": u["role"]} for u in users]
    groups = body.get("groups")
    if groups is not None:
        if not isinstance(groups, list):
            raise bad("groups: expected a list of {group, role}")
        for i, g in enumerate(groups):
            if not isinstance(g, dict) or not isinstance(g.get("group"), str) or not g["group"]:
                raise bad(f"groups[{i}].group: is required")
            if g.get("role") not in GROUP_ROLES:
                raise bad(f"groups[{i}].role: {g.get('role')!r} is not one of {', '.join(GROUP_ROLES)}")
        perms["groups"] = [{"group": g["group"], "role": g["role"]} for g in groups]
    everyone = body.get("everyone")
    if everyone is not None:
        if everyone not in EVERYONE_ROLES:
            raise bad(f"everyone: {everyone!r} is not one of {', '.join(EVERYONE_ROLES)}")
        perms["everyone"] = everyone
    share = flag(body.get("share_assets"), "share_assets")
    if share is not None:
        perms["share_assets"] = share
    store.put(ASSET, doc["id"], doc)
    return perms


def transfer(store: Store, doc: dict, body: Any, *, now: float) -> dict:
    body = obj(body, "body") or {}
    target = obj(body.get("target"), "target")
    aws = obj((target or {}).get("aws"), "target.aws")
    if aws is None:
        raise bad("target.aws: is required")
    bucket = needed(aws.get("bucket"), "target.aws.bucket")
    if "prefix" not in aws:  # seed 003 marks it required; the SDK sends null when unset
        raise bad("target.aws.prefix: is required")
    prefix = text(aws.get("prefix"), "target.aws.prefix")
    flag(body.get("force"), "force")
    if doc["type"] == "combined":
        raise bad("a combined data asset cannot be transferred; transfer the assets it contains")
    if doc["state"] != "ready":
        raise bad(f"data asset {doc['id']} is not ready (state: {doc['state']})")
    dest = f"{bucket}/{folder(prefix)}".rstrip("/")
    doc["objects"] = [_copy(store, o, dest) for o in doc["objects"]]
    store.delete_blobs(f"{INTERNAL_BUCKET}/{doc['id']}/")
    doc["source_bucket"] = {"origin": "aws", "bucket": bucket, "prefix": prefix, "external": True}
    doc["last_transferred"], doc["transfer_error"] = int(now), None
    store.put(ASSET, doc["id"], doc)
    return doc


# -- files -------------------------------------------------------------------------------------------
def objects_of(store: Store, doc: dict) -> list[dict]:
    """The asset's files; a combined asset shows each contained asset under its mount. An
    external asset's files are in its bucket: seed 003 says to read them there."""
    if doc["state"] != "ready":
        raise bad(f"data asset {doc['id']} is not ready (state: {doc['state']})")
    if (doc.get("source_bucket") or {}).get("external"):
        sb = doc["source_bucket"]
        raise bad(f"data asset {doc['id']} is external: list its files in s3://{sb['bucket']}/"
                  f"{folder(sb.get('prefix'))} directly (the API lists internal data assets only)")
    if doc["type"] != "combined":
        return doc["objects"]
    return [{**o, "path": f"{folder(p['mount'])}/{o['path']}"} for p in _parts(store, doc) for o in p["objects"]]


def list_folder(objects: list[dict], path: str) -> list[dict]:
    """The direct children of a folder: folders, then files, each by name."""
    base = folder(path)
    start = f"{base}/" if base else ""
    folders: dict[str, dict] = {}
    files: list[dict] = []
    for o in objects:
        if not o["path"].startswith(start):
            continue
        rest = o["path"][len(start):]
        head, sep, _ = rest.partition("/")
        if sep:
            folders.setdefault(head, {"name": head, "path": start + head, "type": "folder"})
        else:
            files.append({"name": rest, "path": o["path"], "type": "file", "size": o["size"]})
    if base and not folders and not files:
        raise not_found(f"folder {base!r} in the data asset")
    return sorted(folders.values(), key=lambda i: i["name"]) + sorted(files, key=lambda i: i["name"])


def file_in(objects: list[dict], path: str) -> dict:
    wanted = folder(path)
    found = next((o for o in objects if o["path"] == wanted), None)
    if found is None:
        raise not_found(f"file {wanted!r} in the data asset")
    return found


# -- search ------------------------------------------------------------------------------------------
SORT_FIELDS = ("created", "type", "name", "size")
OWNERSHIP = ("created", "shared", "private")
ORIGINS = ("internal", "external")
QUERY_FIELDS = ("name", "tag", "run_script", "commit_id", "contained_data_id")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_TERM = re.compile(r'(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)')


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def decode_token(token: str) -> int:
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise bad("next_token: not a token this server issued") from None
    if offset < 0:
        raise bad("next_token: not a token this server issued")
    return offset


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise bad(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _count(value: Any, where: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{where}: expected an integer")
    return value


def parse_search(body: Any, schema: dict) -> dict:
    """A validated POST /data_assets/search body; 400 naming the first bad field."""
    body = obj(body, "body") or {}
    limit = _count(body.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise bad(f"limit: must be between 1 and {MAX_LIMIT}")
    offset = _count(body.get("offset"), "offset", 0)
    if offset < 0:
        raise bad("offset: must not be negative")
    token = text(body.get("next_token"), "next_token")
    if token:  # the SDK's iterator re-sends the first offset with each token: the token wins
        offset = decode_token(token)
    params = {
        "query": text(body.get("query"), "query") or "", "offset": offset, "limit": limit,
        "sort_field": _choice(body.get("sort_field"), "sort_field", SORT_FIELDS),
        "sort_order": _choice(body.get("sort_order"), "sort_order", ("asc", "desc")),
        "type": _choice(body.get("type"), "type", TYPES),
        "ownership": _choice(body.get("ownership"), "ownership", OWNERSHIP),
        "origin": _choice(body.get("origin"), "origin", ORIGINS),
        "favorite": flag(body.get("favorite"), "favorite"),
        "archived": flag(body.get("archived"), "archived"),
        "filters": _filters(body.get("filters"), schema),
    }
    params["terms"] = parse_query(str(params["query"] or ""))
    return params


def _filters(value: Any, schema: dict) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("filters: expected a list of {key, value?, values?, range?, exclude?}")
    known = {"name", "description", "tags"} | {f["name"] for f in schema.get("fields") or []}
    out = []
    for i, f in enumerate(value):
        where = f"filters[{i}]"
        f = obj(f, where)
        if f is None:
            raise bad(f"{where}: expected an object")
        key = needed(f.get("key"), f"{where}.key")
        if key not in known:
            raise bad(f"{where}.key: unknown field {key!r} (name, description, tags or a custom field)")
        one = f.get("value")
        many = f.get("values")
        if one is not None and not (isinstance(one, str) or is_number(one)):
            raise bad(f"{where}.value: expected a string or a number")
        if many is not None and not (isinstance(many, list) and all(isinstance(v, str) or is_number(v)
                                                                     for v in many)):
            raise bad(f"{where}.values: expected a list of strings or numbers")
        rng = obj(f.get("range"), f"{where}.range")
        if rng is not None:
            if rng.get("min") is None and rng.get("max") is None:
                raise bad(f"{where}.range: min or max is required")
            if any(v is not None and not is_number(v) for v in (rng.get("min"), rng.get("max"))):
                raise bad(f"{where}.range: min and max must be numbers")
        out.append({"key": key, "values": ([one] if one is not None else []) + (many or []),
                    "range": rng, "exclude": bool(flag(f.get("exclude"), f"{where}.exclude"))})
    return out


def parse_query(query: str) -> dict[str, list[str]]:
    """{field: [terms]} (OR within a field, AND across); free text under "" (AND)."""
    terms: dict[str, list[str]] = {}
    for m in _TERM.finditer(query):
        quoted_field, quoted, plain_field, plain, phrase, word = m.groups()
        field, value = (quoted_field, quoted) if quoted_field else (plain_field, plain)
        if field and field.lower() not in QUERY_FIELDS:  # "foo:bar" is just text
            field, value = "", m.group(0).replace('"', "")
        elif not field:
            field, value = "", phrase if phrase is not None else word
        if value.strip():
            terms.setdefault(field.lower(), []).append(value.strip().casefold())
    return terms


def _free_text(doc: dict) -> str:
    meta = " ".join(str(v) for v in (doc["custom_metadata"] or {}).values())
    return "\n".join([doc["name"], " ".join(doc["tags"]), doc["description"] or "", meta]).casefold()


def _term_matches(doc: dict, field: str, term: str) -> bool:
    prov = doc["provenance"] or {}
    if field == "name":
        return term in doc["name"].casefold()
    if field == "tag":
        return any(term == t.casefold() for t in doc["tags"])
    if field == "run_script":
        return term in (prov.get("run_script") or "").casefold()
    if field == "commit_id":
        return bool(prov.get("commit")) and prov["commit"].casefold().startswith(term)
    if field == "contained_data_id":
        return any(term == c.casefold() for c in doc["contained"])
    return term in _free_text(doc)


def _query_matches(doc: dict, terms: dict[str, list[str]]) -> bool:
    for field, wanted in terms.items():
        if field == "":
            if not all(_term_matches(doc, "", t) for t in wanted):
                return False
        elif not any(_term_matches(doc, field, t) for t in wanted):
            return False
    return True


def _field_values(doc: dict, key: str) -> list:
    if key == "name":
        return [doc["name"]]
    if key == "description":
        return [doc["description"]] if doc["description"] else []
    if key == "tags":
        return list(doc["tags"])
    value = (doc["custom_metadata"] or {}).get(key)
    return [] if value is None else value if isinstance(value, list) else [value]


def _same(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return a == b
    return str(a).casefold() == str(b).casefold()


def _filter_matches(doc: dict, f: dict) -> bool:
    values = _field_values(doc, f["key"])
    if f["range"] is not None:
        low, high = f["range"].get("min"), f["range"].get("max")
        hit = any(is_number(v) and (low is None or v >= low) and (high is None or v <= high) for v in values)
    elif f["values"]:
        hit = any(_same(v, w) for v in values for w in f["values"])
    else:  # a bare key: the field is set
        hit = bool(values)
    return hit != f["exclude"]


def _ownership_matches(doc: dict, user: dict, ownership: str | None) -> bool:
    if ownership is None:
        return role_of(doc, user) is not None
    if ownership == "created":
        return doc["owner"] == user["id"]
    if ownership == "private":  # mine, shared with nobody
        perms = doc["permissions"]
        return (doc["owner"] == user["id"] and perms["everyone"] == "none" and not perms["groups"]
                and all(u["email"].lower() == user["email"].lower() for u in perms["users"]))
    return doc["owner"] != user["id"] and shared_role(doc, user) is not None


def search(store: Store, user: dict, params: dict, *, delay: float, now: float) -> tuple[list[dict], int]:
    """The documents of one page (settled as of `now`; callers render them) and the total."""
    hits = []
    for seq, doc in enumerate(store.iter_raw(ASSET)):
        doc = settle(store, doc, delay, now)  # sizes are known only once ready
        if bool(doc["archived"]) != bool(params["archived"]):
            continue
        if params["type"] and doc["type"] != params["type"]:
            continue
        if params["origin"] and bool((doc["source_bucket"] or {}).get("external")) != \
                (params["origin"] == "external"):
            continue
        if params["favorite"] and user["id"] not in doc["favorited_by"]:
            continue
        if not _ownership_matches(doc, user, params["ownership"]):
            continue
        if not _query_matches(doc, params["terms"]):
            continue
        if not all(_filter_matches(doc, f) for f in params["filters"]):
            continue
        hits.append((seq, doc))
    field = params["sort_field"] or "created"
    # newest first by default; an explicit sort_field sorts ascending unless told otherwise
    descending = params["sort_order"] == "desc" if params["sort_field"] else True
    keys = {"created": lambda d: d["created_ts"], "name": lambda d: d["name"].casefold(),
            "type": lambda d: d["type"], "size": lambda d: d["size"] or 0}
    hits.sort(key=lambda h: (keys[field](h[1]), h[0]), reverse=descending)
    start = params["offset"]
    return [doc for _, doc in hits[start:start + params["limit"]]], len(hits)
