"""valdi.volume: S3-compatible storage with the folders and files the manifest lists.

    observe   one GET /volume; the contents (one GET each) only of volumes that declare
              folders or files; local files are hashed here so diff can compare them
              with the listing's etags (MD5)
    create    POST /volume (its access keys are returned only then: kept as sensitive
              outputs, and written to `credentials_file` if asked), then folders and files
    update    upload new or changed files (presigned PUT), make folders, delete the
              files and folders that left the manifest, but only those we had put there;
              rewrite a missing credentials file from the keys in the state
    delete    the volume and everything in it (prevent_destroy is the engine's)
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any

from reconciler.config import localfiles
from reconciler.config.localfiles import remove_output, write_output
from reconciler.config.model import Ref, Resource, Template
from reconciler.config.validation import check_local_path
from reconciler.errors import ApiError, Conflict, CreatedIncomplete, Problem
from reconciler.plan.model import FieldChange
from reconciler.providers.contract import (
    DeletionPolicy,
    Diff,
    Kind,
    KindContext,
    Live,
    Wanted,
)
from reconciler.providers.valdi.client import DEFAULT_ENDPOINT, ValdiClient

KEYS = ("access_key_id", "secret_access_key")
GATEWAY = "https://gateway.valdi.ai"


def md5_of(path: Path) -> str | None:
    """What the gateway's etag is for a single-part upload."""
    return localfiles.digest(path, "md5")


def _folder(path: str) -> str:
    return path.strip("/")


def gateway_of(api: Any) -> str:
    """The S3 gateway of the VALDI the client talks to: the real one, or the sandbox's
    (an emulator serves it under its own URL, /gateway)."""
    endpoint = getattr(api, "endpoint", DEFAULT_ENDPOINT)
    return GATEWAY if endpoint == DEFAULT_ENDPOINT else f"{endpoint}/gateway"


def credentials_text(keys: dict, bucket_name: str, user_id: Any = None, gateway: str = GATEWAY) -> str:
    """An AWS credentials file (awscli, boto3) for the volume's gateway."""
    # the gateway keeps every volume in the bucket `valdi`, under <user_id>/<volume name>/
    where = f"s3://valdi/{user_id}/{bucket_name}/" if user_id is not None else f"s3://valdi/<user id>/{bucket_name}/"
    return (f"# VALDI volume {bucket_name}: {where} through {gateway}\n"
            f"# e.g. aws s3 ls --endpoint-url {gateway} {where}\n"
            "[default]\n"
            f"aws_access_key_id = {keys['access_key_id']}\n"
            f"aws_secret_access_key = {keys['secret_access_key']}\n")


MARKER_ONLY = "folder marker removed; what is still inside stays"  # how the plan shows DROP_MARKER


class Op(Enum):
    """What `update` does for one change of the diff (FieldChange.op; key: (field, path))."""

    MAKE_FOLDER = "make folder"
    UPLOAD = "upload"
    DELETE_FILE = "delete file"
    DELETE_FOLDER = "delete folder"  # with everything in it: only when nothing stays
    DROP_MARKER = "drop folder marker"  # the empty object we made; what is inside stays
    WRITE_CREDENTIALS = "write credentials file"


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def _folders_leaving(spec: dict, last: dict, have_files: dict, have_folders: set[str],
                     deleted_files: set[str]) -> list[FieldChange]:
    """Folders we made that left the manifest. One that will be empty is deleted whole; one
    that still holds files or folders (still declared, or not ours) loses only the folder
    marker we put there: deleting the prefix would take the rest with it."""
    kept = {_folder(x) for x in spec.get("folders") or []}
    leaving = [_folder(x) for x in last.get("folders") or [] if _folder(x) not in kept and _folder(x) in have_folders]
    wanted_files = {f["path"] for f in spec.get("files") or [] if isinstance(f, dict) and "path" in f}
    files_after = (set(have_files) - deleted_files) | wanted_files
    holders = {p.rsplit("/", 1)[0] for p in have_files if "/" in p}  # folders only there for a file
    holders = {"/".join(h.split("/")[:i]) for h in holders for i in range(1, h.count("/") + 2)}
    changes = []
    for folder in leaving:
        stays = [p for p in files_after if _inside(p, folder)]
        stays += [f for f in (kept | (have_folders - holders)) - set(leaving) if _inside(f, folder)]
        changes.append(FieldChange(f"folders.{folder}", "present", MARKER_ONLY if stays else None,
                                   op=Op.DROP_MARKER if stays else Op.DELETE_FOLDER, key=("folders", folder)))
    return changes


class VolumeKind(Kind[ValdiClient]):
    name = "valdi.volume"
    schema = "valdi.volume.schema.json"
    sensitive = set(KEYS)
    outputs = {"id", "bucket_name", *KEYS}
    deletion_policies = ("delete", "orphan")
    natural_key_conflicts = True  # the bucket name
    local_files = {"credentials_file": "write", "files[].source": "read"}  # held to reconciler.config.localfiles' rules
    deletion_effects = {"delete": DeletionPolicy("delete", "the volume is deleted in VALDI, with every file in it"),
                        "orphan": DeletionPolicy("orphan", "reconciler stops managing it; the volume and its files stay")}
    unpriced = True  # VALDI bills storage but publishes no per-volume price

    # -- reading ------------------------------------------------------------------------------
    def observe(self, ctx: KindContext[ValdiClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        api: ValdiClient = ctx.api
        volumes = api.volumes()
        by_id = {v["volume_id"]: v for v in volumes}
        by_name = {v.get("bucket_name"): v for v in volumes}
        found: dict[str, dict] = {}
        for w in wanted:
            volume = by_id.get(w.id) if w.id else None
            if volume is None and (w.lookup or w.probe) and w.spec:  # bucket names are unique per account
                volume = by_name.get(w.spec.get("bucket_name"))
            if volume is not None:
                found[w.address] = volume
        # the listing has no contents: one GET each, only for volumes that list files or
        # folders (now or at the last apply), read concurrently
        reads = [(w.address, found[w.address]["volume_id"]) for w in wanted if w.address in found
                 and any((doc or {}).get(k) for doc in (w.spec, w.last_applied) for k in ("files", "folders"))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            contents = dict(zip((a for a, _ in reads), pool.map(lambda r: api.contents(r[1]), reads)))
        out: dict[str, Live | None] = {}
        for w in wanted:
            if w.address not in found:
                out[w.address] = None
                continue
            spec = w.spec or {}
            local: dict[str, Any] = {f["path"]: local_digest(w.resolve_path(f["source"]))
                     for f in spec.get("files") or [] if isinstance(f, dict) and isinstance(f.get("source"), str)}
            creds = spec.get("credentials_file")
            local["credentials_file"] = w.resolve_path(creds).is_file() if isinstance(creds, str) else None
            out[w.address] = make_live(found[w.address], contents.get(w.address, []), w.secrets, local)
        return out

    def discover(self, ctx: KindContext[ValdiClient]) -> list[Live]:
        """The bucket only: its access keys were given once, at creation, and its files
        stay unmanaged until the manifest lists them."""
        return [Live(v["volume_id"], {"bucket_name": v["bucket_name"]}) for v in ctx.api.volumes()
                if v.get("bucket_name")]

    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        problems = []
        for r in resources:
            files = r.spec.get("files")
            if isinstance(files, (Ref, Template)):  # its sources would be known only during the apply
                pos = r.where("spec.files")
                problems.append(Problem(pos.file, pos.line, pos.column, f"{r.address}.spec.files",
                                        "files cannot be a resource reference: each source is a local file, "
                                        "checked before any call; list them"))
                continue
            for i, f in enumerate(files if isinstance(files, list) else []):
                if isinstance(f, dict) and "source" in f:
                    found = check_local_path(r, f"spec.files[{i}].source", f["source"])
                    if found:
                        problems.append(found)
        return problems

    # -- comparing ----------------------------------------------------------------------------
    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        changes: list[FieldChange] = []
        if spec.get("bucket_name") != live.attrs.get("bucket_name"):
            changes.append(FieldChange("bucket_name", live.attrs.get("bucket_name"), spec.get("bucket_name"), True))
        have_files: dict[str, str] = live.attrs.get("files") or {}
        have_folders: set[str] = set(live.attrs.get("folders") or [])
        for folder in spec.get("folders") or []:
            if _folder(folder) not in have_folders:
                changes.append(FieldChange(f"folders.{_folder(folder)}", None, "create", op=Op.MAKE_FOLDER,
                                           key=("folders", _folder(folder))))
        wanted_paths = set()
        unsure = []
        for f in spec.get("files") or []:
            path = f["path"]
            wanted_paths.add(path)
            want = _local_of(live.local.get(path))
            have = have_files.get(path)
            differs, compared = _differs(have, want)
            if not compared:
                unsure.append(path)
            if differs:
                changes.append(FieldChange(f"files.{path}", None if have is None else _shown(have),
                                           f"upload {f['source']}" + (f" (md5 {want[0]})" if want[0] else ""),
                                           op=Op.UPLOAD, key=("files", path)))
        last = last_applied or {}
        for f in last.get("files") or []:  # ours before, gone from the manifest now
            if f["path"] not in wanted_paths and f["path"] in have_files:
                changes.append(FieldChange(f"files.{f['path']}", _shown(have_files[f['path']]), None,
                                           op=Op.DELETE_FILE, key=("files", f["path"])))
        changes += _folders_leaving(spec, last, have_files, have_folders,
                                    {c.key[1] for c in changes if c.op is Op.DELETE_FILE})
        creds = spec.get("credentials_file")
        if creds and live.local.get("credentials_file") is False and all(live.secrets.get(k) for k in KEYS):
            changes.append(FieldChange("credentials_file", None, f"write {creds}", op=Op.WRITE_CREDENTIALS,
                                       key=("credentials_file",)))
        notes = [f"VALDI listed {', '.join(unsure)} without an etag: compared by size or presence only, "
                 "content not compared"] if unsure else []
        return Diff(changes, notes)

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        if spec and live and spec.get("credentials_file") and live.local.get("credentials_file") is False \
                and not all(live.secrets.get(k) for k in KEYS):
            return ["the volume's access keys are returned only when it is created and are not in the state; "
                    "the credentials file cannot be written (replace the volume for new keys)"]
        return []

    # -- writing ------------------------------------------------------------------------------
    def create(self, ctx: KindContext[ValdiClient], spec: dict) -> Live:
        api: ValdiClient = ctx.api
        try:
            volume = api.create_volume(spec["bucket_name"])
        except Conflict:
            raise ApiError(f"a volume named {spec['bucket_name']!r} already exists in this VALDI account and is "
                           "not in the state; pick another bucket_name or delete the old volume", api="valdi",
                           endpoint="POST /volume") from None
        keys = {k: volume.get(k) for k in KEYS}
        if spec.get("credentials_file") and all(keys.values()):
            write_output(ctx.base_dir, spec["credentials_file"],
                         credentials_text(keys, spec["bucket_name"], gateway=gateway_of(api)))
        live = make_live(volume, [], keys, {})
        try:
            return self._sync(ctx, live, spec, None)
        except Exception as e:  # the keys exist only here: the engine records them, then retries
            raise CreatedIncomplete(live, e) from None

    def update(self, ctx: KindContext[ValdiClient], live: Live, spec: dict, diff: Diff) -> Live:
        return self._sync(ctx, live, spec, diff)

    def _sync(self, ctx: KindContext[ValdiClient], live: Live, spec: dict, diff: Diff | None) -> Live:
        """Folders, then files (uploads and deletes), then the credentials file."""
        api: ValdiClient = ctx.api
        vid = live.id
        files = dict(live.attrs.get("files") or {})
        folders = set(live.attrs.get("folders") or [])
        ops = {(c.op, c.key) for c in diff.changes} if diff else None  # None: a create does it all
        for folder in spec.get("folders") or []:
            if _folder(folder) not in folders:
                api.make_folder(vid, folder)
                folders.add(_folder(folder))
        for f in spec.get("files") or []:
            if ops is not None and (Op.UPLOAD, ("files", f["path"])) not in ops:
                continue
            source = ctx.resolve_path(f["source"])
            content = source.read_bytes()
            ctx.progress(f"uploading {f['source']} to {spec['bucket_name']}/{f['path']} ({len(content)} bytes)")
            api.upload(vid, f["path"], content)
            files[f["path"]] = hashlib.md5(content, usedforsecurity=False).hexdigest()
            local = dict(live.local)
            local[f["path"]] = (files[f["path"]], len(content))
            live = Live(live.id, live.attrs, live.outputs, local=local, secrets=live.secrets)
        for change in (diff.changes if diff else []):
            if change.op is Op.DELETE_FILE:
                api.delete_path(vid, change.key[1], folder=False)
                files.pop(change.key[1], None)
            elif change.op is Op.DELETE_FOLDER:
                api.delete_path(vid, change.key[1], folder=True)
                folders.discard(change.key[1])
        for change in (diff.changes if diff else []):
            if change.op is Op.DROP_MARKER:
                api.delete_path(vid, change.key[1] + "/", folder=False)  # the marker we made
        creds = spec.get("credentials_file")
        if ops and (Op.WRITE_CREDENTIALS, ("credentials_file",)) in ops and creds \
                and all(live.secrets.get(k) for k in KEYS):
            write_output(ctx.base_dir, creds, credentials_text(live.secrets, spec["bucket_name"],
                                                               gateway=gateway_of(ctx.api)))
        attrs = {**live.attrs, "bucket_name": spec["bucket_name"], "files": files, "folders": sorted(folders)}
        return Live(vid, attrs, dict(live.outputs), local=dict(live.local), secrets=dict(live.secrets))

    def delete(self, ctx: KindContext[ValdiClient], live: Live, policy: str, last_applied: dict | None) -> None:
        if policy == "delete":
            ctx.api.delete_volume(live.id)
            creds = (last_applied or {}).get("credentials_file")
            if isinstance(creds, str):  # its keys died with it; a file we did not write stays
                remove_output(ctx.base_dir, creds)


def local_digest(path: Path) -> tuple[str | None, int | None]:
    """(MD5, size) of a local file; (None, None) when it cannot be read."""
    digest = md5_of(path)
    return (digest, path.stat().st_size) if digest is not None else (None, None)


def remote_mark(entry: dict) -> str:
    """What we know of a listed file: its MD5 etag, else `size:N`, else `present`."""
    if entry.get("etag"):
        return entry["etag"]
    return f"size:{entry['size']}" if entry.get("size") is not None else "present"


def _local_of(value) -> tuple[str | None, int | None]:
    """(MD5, size) of the local file as observe recorded it (an MD5 alone: no size)."""
    if isinstance(value, str):
        return value, None
    return tuple(value) if isinstance(value, (tuple, list)) and len(value) == 2 else (None, None)


def _differs(have: str | None, want: tuple) -> tuple[bool, bool]:
    """(does the listed file differ from the local one, was its content compared)."""
    md5, size = want
    if have is None:
        return True, True
    if have == "present":
        return False, False
    if have.startswith("size:"):
        return size is not None and have != f"size:{size}", False
    return md5 is not None and md5 != have, True


def _shown(have: str) -> str:
    return have if have.startswith("size:") or have == "present" else f"md5 {have}"


def make_live(volume: dict, contents: list[dict], secrets: dict, local: dict) -> Live:
    files = {c["path"]: remote_mark(c) for c in contents if c.get("type") == "file"}
    folders = sorted({_folder(c["path"]) for c in contents if c.get("type") == "folder"} |
                     {_folder(p.rsplit("/", 1)[0]) for p in files if "/" in p})
    attrs = {"bucket_name": volume.get("bucket_name"), "files": files, "folders": folders}
    outputs: dict[str, Any] = {"id": volume["volume_id"], "bucket_name": volume.get("bucket_name")}
    kept = {k: volume.get(k) or secrets.get(k) for k in KEYS}  # returned by the create only
    return Live(volume["volume_id"], attrs, outputs, local=local, secrets=kept)
