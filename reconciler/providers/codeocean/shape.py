"""A Code Ocean DataAsset in the manifest's words, and the manifest's words as request
bodies. Pure functions: no API calls.

The DataAsset object does not echo everything a create was given (`public`, a
computation's `path`, `results_info`), so those are compared with what we last applied,
not with the live object. After a transfer the asset's `source_bucket` describes where
the data went (the target), not where it came from.
"""
from __future__ import annotations

from typing import Any

UPDATABLE = ("name", "description", "mount", "tags", "custom_metadata")  # one PUT carries them all
AWS_DEFAULTS = {"prefix": "", "keep_on_external_storage": False, "public": False}
# what a new asset's permissions start as (the owner aside): a key dropped from the
# manifest goes back to this
PERMISSION_DEFAULTS = {"users": [], "groups": [], "everyone": "none", "share_assets": False}


def live_attrs(asset: dict, archived: bool, permissions: dict | None, prior: dict | None) -> dict:
    """The asset in manifest shape; `prior` (last applied, else the spec) fills what the
    API does not return."""
    prior = prior or {}
    sb = asset.get("source_bucket") or {}
    transferred = bool(asset.get("last_transferred"))
    provenance = asset.get("provenance") or {}
    # `external` may be absent from source_bucket: then it is what we applied (unknown to
    # the answer, never a difference)
    external = sb.get("external") if isinstance(sb.get("external"), bool) else external_applied(prior)
    attrs: dict[str, Any] = {
        "name": asset.get("name"), "description": asset.get("description") or "",
        "mount": asset.get("mount"), "tags": sorted(set(asset.get("tags") or [])),
        "custom_metadata": present(asset.get("custom_metadata")), "archived": archived,
        "state": asset.get("state"), "type": asset.get("type"),
    }
    if asset.get("state") == "failed":
        attrs["failure_reason"] = asset.get("failure_reason")
    if asset.get("type") == "combined":
        attrs["source"] = {"combined": [c["id"] for c in asset.get("contained_data_assets") or []]}
    elif provenance.get("computation"):
        comp = dict(((prior.get("source") or {}).get("computation") or {}))
        attrs["source"] = {"computation": {**comp, "id": provenance["computation"]}}
    elif sb.get("bucket") and not transferred and sb.get("origin") == "gcp":
        prior_gcp = (prior.get("source") or {}).get("gcp") or {}
        attrs["source"] = {"gcp": {**{k: v for k, v in prior_gcp.items() if k in ("client_id", "client_secret")},
                                   "bucket": sb["bucket"], "prefix": folder(sb.get("prefix"))}}
    elif sb.get("bucket") and not transferred:
        prior_aws = (prior.get("source") or {}).get("aws") or {}
        attrs["source"] = {"aws": {"public": False,  # not returned: as we applied it
                                   **{k: v for k, v in prior_aws.items() if k in ("public", "endpoint_name")},
                                   "bucket": sb["bucket"], "prefix": folder(sb.get("prefix")),
                                   "keep_on_external_storage": external}}
    else:  # moved by a transfer: the origin is only in what we applied
        attrs["source"] = normal_source(prior.get("source"))
    if sb.get("bucket") and (transferred or (provenance.get("computation") and external)):
        attrs["target"] = {"aws": {"bucket": sb["bucket"], "prefix": folder(sb.get("prefix"))}}
    if permissions is not None:
        attrs["permissions"] = permissions_attrs(permissions, asset.get("owner_email"))
    if "results_info" in prior:
        attrs["results_info"] = prior["results_info"]
    return attrs


def external_applied(prior: dict) -> bool:
    """keep_on_external_storage as last applied (a computation's results kept in a target
    bucket are external)."""
    aws = (prior.get("source") or {}).get("aws") if isinstance(prior.get("source"), dict) else None
    if isinstance(aws, dict) and isinstance(aws.get("keep_on_external_storage"), bool):
        return aws["keep_on_external_storage"]
    return bool(prior.get("target"))


def present(values: Any) -> dict:
    """A custom metadata map without null values: a key set to null is a key not set."""
    return {k: v for k, v in values.items() if v is not None} if isinstance(values, dict) else {}


def missing_aws_fields(source: Any) -> list[str]:
    """The fields Code Ocean requires in source.aws (seed 003) that the manifest leaves out."""
    aws = source.get("aws") if isinstance(source, dict) else None
    if not isinstance(aws, dict):
        return []
    needed = ("prefix",) if aws.get("use_input_bucket") else tuple(AWS_DEFAULTS)
    return [k for k in needed if aws.get(k) is None]


def folder(prefix: Any) -> Any:
    """A prefix names a folder: "data/" and "data" are the same one."""
    return prefix.strip("/") if isinstance(prefix, str) else (prefix or "")


def permissions_attrs(perms: dict, owner_email: str | None) -> dict:
    """Users and groups as sorted lists; the owner's own entry is not ours to manage."""
    users = [u for u in perms.get("users") or []
             if not (u.get("role") == "owner" and owner_email and u.get("email", "").lower() == owner_email.lower())]
    return {"users": sorted(({"email": u["email"], "role": u["role"]} for u in users), key=lambda u: u["email"]),
            "groups": sorted(({"group": g["group"], "role": g["role"]} for g in perms.get("groups") or []),
                             key=lambda g: g["group"]),
            "everyone": perms.get("everyone") or "none",
            "share_assets": bool(perms.get("share_assets"))}


def normal_source(source: Any) -> Any:
    """The spec's source with the API's defaults filled in, for comparison."""
    if not isinstance(source, dict):
        return source
    if "aws" in source and isinstance(source["aws"], dict):
        aws = {**AWS_DEFAULTS, **source["aws"]}
        aws["prefix"] = folder(aws.get("prefix"))
        return {"aws": aws}
    if "gcp" in source and isinstance(source["gcp"], dict):
        return {"gcp": {**source["gcp"], "prefix": folder(source["gcp"].get("prefix"))}}
    if "combined" in source and isinstance(source["combined"], list):
        return {"combined": list(source["combined"])}
    return source


def normal_permissions(perms: dict, dropped: Any = ()) -> dict:
    """The manifest's permissions in the shape permissions_attrs gives: only the keys it
    sets, plus the `dropped` ones (set by our last apply, gone from the manifest now) at
    the values a new asset starts with."""
    out: dict[str, Any] = {key: PERMISSION_DEFAULTS[key] for key in dropped if key in PERMISSION_DEFAULTS}
    if "users" in perms:
        out["users"] = permissions_attrs({"users": perms["users"]}, None)["users"]
    if "groups" in perms:
        out["groups"] = permissions_attrs({"groups": perms["groups"]}, None)["groups"]
    if "everyone" in perms:
        out["everyone"] = perms["everyone"]
    if "share_assets" in perms:
        out["share_assets"] = perms["share_assets"]
    return out


def create_body(spec: dict) -> dict:
    source = spec["source"]
    body: dict[str, Any] = {"name": spec["name"], "mount": spec.get("mount") or spec["name"],
                            "tags": list(spec.get("tags") or []), "description": spec.get("description")}
    if spec.get("custom_metadata"):
        body["custom_metadata"] = dict(spec["custom_metadata"])
    if "combined" in source:
        body["data_asset_ids"] = list(source["combined"])
    elif isinstance(source.get("aws"), dict):  # seed 003 requires these three: the defaults, sent
        body["source"] = {"aws": {**source["aws"], **{k: AWS_DEFAULTS[k] for k in missing_aws_fields(source)}}}
    else:
        body["source"] = source
    if spec.get("target") and "computation" in source:  # others are transferred once ready
        body["target"] = spec["target"]
    if spec.get("results_info"):
        body["results_info"] = spec["results_info"]
    return body


def update_body(attrs: dict, changes: list) -> dict:
    """PUT wants all five keys (null would mean "keep"), so the body is the live asset
    with the diff's changes applied: fields the diff leaves alone (unchanged, or under
    lifecycle.ignore_changes) keep what the asset has now. Custom metadata is replaced as
    a whole, so keys someone else set are kept, and a key we set before and the manifest
    dropped ("custom_metadata.<key>" -> None) is removed."""
    body: dict[str, Any] = {"name": attrs.get("name"), "description": attrs.get("description") or "",
                            "mount": attrs.get("mount"), "tags": list(attrs.get("tags") or []),
                            "custom_metadata": dict(attrs.get("custom_metadata") or {})}
    for c in changes:
        top, _, key = c.path.partition(".")
        if top not in UPDATABLE:
            continue
        if top == "custom_metadata" and key:  # a removed key is sent as null: gone whether the
            body["custom_metadata"][key] = c.new  # server replaces the map or merges into it
        elif top == "custom_metadata":
            new = dict(c.new or {})
            body["custom_metadata"] = {**{k: None for k in body["custom_metadata"] if k not in new}, **new}
        elif top == "description":
            body["description"] = c.new or ""
        elif top == "tags":
            body["tags"] = list(c.new or [])
        elif c.new is not None:  # name and mount cannot be cleared
            body[top] = c.new
    return body


def normal_target(target: Any) -> Any:
    if isinstance(target, dict) and isinstance(target.get("aws"), dict):
        aws = target["aws"]
        return {"aws": {"bucket": aws.get("bucket"), "prefix": folder(aws.get("prefix"))}}
    return target


def permissions_body(perms: dict, owner_email: str | None, current: dict) -> dict:
    """A complete POST body (seed 003 requires users, groups and everyone): the live
    permissions (`current`, in permissions_attrs' shape) with the given keys changed. The
    owner's own entry is never dropped by us."""
    merged = {**PERMISSION_DEFAULTS, **permissions_attrs(current or {}, owner_email),
              **{k: v for k, v in perms.items() if v is not None and k in PERMISSION_DEFAULTS}}
    users = [{"email": u["email"], "role": u["role"]} for u in merged["users"]]
    if owner_email and not any(u["email"].lower() == owner_email.lower() for u in users):
        users.insert(0, {"email": owner_email, "role": "owner"})
    return {"users": users, "groups": [{"group": g["group"], "role": g["role"]} for g in merged["groups"]],
            "everyone": merged["everyone"], "share_assets": bool(merged["share_assets"])}
