"""The VALDI API client: login and token refresh, the device catalog, SSH keys, VMs and
volumes. Listings are read once per run (cached until a write).

Tokens: the access token lives 5 minutes; its `exp` is an integer YYYYMMDDHHMMSS in
UTC (not Unix seconds). It is refreshed shortly before it expires and again when a call
answers 401; when the refresh token has expired too, we log in again. The password and
the tokens stay in this object: HttpApi redacts them from logs and errors.
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from reconciler.errors import ApiError, AuthError, NotFound
from reconciler.providers import shared
from reconciler.providers.http import HttpApi
from reconciler.providers.runcache import RunCache

DEFAULT_ENDPOINT = "https://api.valdi.ai"
# how a refused refresh token may be answered (the emulator says 401; VALDI documents none)
REFUSED_REFRESH = (400, 401, 403, 422)


def token_expiry(token: str) -> tuple[float, float]:
    """(expires_at, lifetime) in Unix seconds, from the JWT payload. VALDI's `exp` is
    YYYYMMDDHHMMSS; creation_time gives the lifetime, so short-lived tokens refresh early
    enough. An unreadable token counts as already expired."""
    try:
        part = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        exp = datetime.strptime(str(payload["exp"]), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp()
        created = (payload.get("data") or {}).get("creation_time")
        born = datetime.strptime(created, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() \
            if created else exp - 300
        return exp, max(exp - born, 1.0)
    except (IndexError, KeyError, ValueError, TypeError):
        return 0.0, 1.0


def encode_path(path: str) -> str:
    """VALDI's path segments: URL-safe base64 of the path inside the volume."""
    return base64.urlsafe_b64encode(path.encode()).decode()


class ValdiClient:
    def __init__(self, endpoint: str, email: str | None, password: str | None, *, http: HttpApi | None = None,
                 clock: Callable[[], float] = time.time, vm_timeout: float = 1200.0):
        self.endpoint = endpoint.rstrip("/")
        self.vm_timeout = vm_timeout  # seconds apply waits for provisioning -> running
        self._email, self._password = email, password
        self.http = http or HttpApi("valdi", self.endpoint, headers={
            "Accept": "application/json", "User-Agent": "reconciler"})
        self._clock = clock
        self._access: str | None = None
        self._access_exp, self._access_life = 0.0, 300.0  # expiry and lifetime, from the JWT
        self._refresh: str | None = None
        self._refresh_exp, self._refresh_life = 0.0, 1.0
        self._auth_lock = threading.Lock()
        self._cache = RunCache()
        self.logins = 0  # how often we had to log in (tests and benchmarks read these)
        self.refreshes = 0

    def close(self) -> None:
        self.http.close()

    # -- tokens ---------------------------------------------------------------------------
    def _fresh(self, exp: float, lifetime: float) -> bool:
        margin = min(30.0, lifetime / 4)  # refresh a little before the end
        return exp - self._clock() > margin

    def _token(self, stale: str | None = None) -> str:
        with self._auth_lock:
            if self._access and self._access != stale and self._fresh(self._access_exp, self._access_life):
                return self._access
            if self._refresh and self._fresh(self._refresh_exp, self._refresh_life):
                try:
                    body = self.http.request("POST", "/account/refresh_token", json={"token": self._refresh},
                                             idempotent=True)
                    self.refreshes += 1
                    self._set_access(body["access_token"])
                    return self._access  # type: ignore[return-value]
                except ApiError as e:
                    if e.status not in REFUSED_REFRESH:
                        raise
                    self._refresh = None  # expired or revoked: log in again
            self._login()
            return self._access  # type: ignore[return-value]

    def refresh_now(self) -> None:
        """Trade the refresh token for a new access token now (doctor: does refresh work?)."""
        self._token()  # logged in first, if need be
        with self._auth_lock:
            if not self._refresh:
                raise ApiError("login answered no refresh_token", api="valdi", endpoint="POST /account/login")
            body = self.http.request("POST", "/account/refresh_token", json={"token": self._refresh},
                                     idempotent=True)
            if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
                raise ApiError("the refresh answer has no access_token", api="valdi",
                               endpoint="POST /account/refresh_token")
            self.refreshes += 1
            self._set_access(body["access_token"])

    def _set_access(self, token: str) -> None:
        self._access = token
        self._access_exp, self._access_life = token_expiry(token)

    def _login(self) -> None:
        if not self._email or not self._password:
            raise AuthError("no VALDI credentials: set providers.valdi.email and password, or VALDI_EMAIL and "
                            "VALDI_PASSWORD", api="valdi")
        body = self.http.request("POST", "/account/login",
                                 json={"email": self._email, "password": self._password}, idempotent=True)
        self.logins += 1
        self._set_access(body["access_token"])
        self._refresh = body.get("refresh_token")
        self._refresh_exp, self._refresh_life = token_expiry(self._refresh) if self._refresh else (0.0, 1.0)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        token = self._token()
        try:
            return self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        except AuthError as e:
            if e.status != 401:
                raise
            token = self._token(stale=token)  # expired in between: once more with a new one
            return self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)

    # -- cache ----------------------------------------------------------------------------
    def invalidate(self, key: str) -> None:
        self._cache.drop(key)

    # -- devices --------------------------------------------------------------------------
    def devices(self) -> dict[str, list[dict]]:
        """provider_id -> its devices (one GET per run)."""
        def load() -> dict[str, list[dict]]:
            body = self._call("GET", "/v1/devices/available") or {}
            return {p["provider_id"]: p.get("provider_devices") or [] for p in body.get("devices_by_provider") or []}
        return self._cache.get("devices", load)

    def shape_images(self, provider_id: str, shape_id: str) -> list[dict]:
        """The images a shape offers (bd3731eb): read once per shape per run."""
        def load() -> list[dict]:
            try:
                body = self._call("GET", f"/v1/devices/available/{provider_id}/{shape_id}") or {}
            except NotFound:
                return []
            return body.get("available_images") or []
        return self._cache.get(f"images/{provider_id}/{shape_id}", load)

    # -- SSH keys -------------------------------------------------------------------------
    def ssh_keys(self) -> list[dict]:
        return self._cache.get("sshkeys", lambda: listed(self._call("GET", "/sshkeys"), "ssh_keys", "GET /sshkeys"))

    def create_ssh_key(self, name: str, public_key: str | None) -> dict:
        body: dict[str, Any] = {"name": name}
        if public_key:
            body["public_key"] = public_key
        try:
            return self._call("POST", "/sshkeys/sshkey", json=body)
        finally:
            self.invalidate("sshkeys")

    # -- VMs ------------------------------------------------------------------------------
    def vms(self) -> list[dict]:
        return self._cache.get("vms", lambda: [normal_vm(v) for v in listed(
            self._call("GET", "/v1/vm"), "virtual_machines", "GET /v1/vm")])

    def vm(self, server_id: str) -> dict | None:
        try:
            body = self._call("GET", f"/v1/vm/{server_id}")
        except NotFound:
            return None
        if isinstance(body, dict) and "virtual_machines" in body:  # either envelope
            items = body["virtual_machines"]
            return normal_vm(items[0]) if items else None
        if not isinstance(body, dict):  # an HTML page, an empty body: unreadable, never "gone"
            raise ApiError(f"unreadable answer: expected a VM object, got {type(body).__name__}", api="valdi",
                           endpoint="GET /v1/vm/{id}")
        return normal_vm(body)

    def provision(self, provider_id: str, name: str, details: dict) -> str | None:
        """The new VM's id, or None when the answer does not carry one (VALDI documents no
        response body): the caller then finds the VM by name."""
        try:
            body = self._call("POST", "/v1/vm/provision",
                              json={"provider_id": provider_id, "user_provided_name": name, "details": details})
        finally:
            self.invalidate("vms")
            self.invalidate("devices")  # capacity moved
        body = body if isinstance(body, dict) else {}
        server = body.get("server") or body.get("server_id") or body.get("id")
        return str(server) if server else None

    def vm_action(self, action: str, server_id: str) -> None:
        """stop / start / destroy: repeating one is harmless; destroying a gone VM succeeds."""
        try:
            self._call("POST", f"/v1/vm/{action}/{server_id}", idempotent=True)
        except NotFound:
            if action != "destroy":
                raise
        finally:
            self.invalidate("vms")

    # -- volumes --------------------------------------------------------------------------
    def volumes(self) -> list[dict]:
        return self._cache.get("volumes", lambda: listed(self._call("GET", "/volume"), "volumes", "GET /volume"))

    def contents(self, volume_id: str) -> list[dict]:
        """The volume's files and folders as [{path, type, size?, etag?}], whichever shape
        VALDI lists them in (the documents show none): a list or an object, of dicts under
        our names or S3's, or of plain path strings. A listing that shows one level only
        (no nested path) is walked folder by folder with the documented `subdirs`."""
        found = self._contents_at(volume_id, None)
        if any("/" in e["path"].rstrip("/") for e in found):
            return found  # recursive already
        seen = {e["path"]: e for e in found}
        todo = [e["path"] for e in found if e["type"] == "folder"]
        while todo and len(seen) < MAX_CONTENTS:
            folder = todo.pop(0)
            for e in self._contents_at(volume_id, folder):
                if e["path"] not in seen:
                    seen[e["path"]] = e
                    if e["type"] == "folder":
                        todo.append(e["path"])
        return sorted(seen.values(), key=lambda e: e["path"])

    def _contents_at(self, volume_id: str, folder: str | None) -> list[dict]:
        params = {"include_contents": "True", **({"subdirs": folder.strip("/")} if folder else {})}
        body = self._call("GET", f"/volume/{volume_id}", params=params) or {}
        entries = [normal_entry(e) for e in contents_items(body.get("contents") if isinstance(body, dict) else None)]
        if folder:  # paths given relative to the folder are made relative to the volume
            prefix = folder.strip("/") + "/"
            entries = [e if e["path"].startswith(prefix) else {**e, "path": prefix + e["path"].lstrip("/")}
                       for e in entries]
            entries = [e for e in entries if e["path"] != prefix]
        return entries

    def create_volume(self, bucket_name: str) -> dict:
        try:
            return self._call("POST", "/volume", json={"bucket_name": bucket_name})
        finally:
            self.invalidate("volumes")

    def make_folder(self, volume_id: str, path: str) -> None:
        self._call("PUT", f"/volume/{volume_id}/folder/{encode_path(path.strip('/'))}", idempotent=True)

    def upload(self, volume_id: str, path: str, content: bytes) -> None:
        """Through the presigned PUT link; the gateway wants an empty Content-Type."""
        link = self._call("GET", f"/volume/{volume_id}/upload/{encode_path(path)}")["upload_link"]
        self.http.request("PUT", link, content=content, absolute=True, idempotent=True,
                          headers={"Content-Type": "", "Accept": "*/*"})

    def delete_path(self, volume_id: str, path: str, folder: bool) -> None:
        try:
            self._call("DELETE", f"/volume/{volume_id}/object/{encode_path(path.strip('/') if folder else path)}",
                       params={"path_type": "PRE" if folder else "OBJ"}, idempotent=True)
        except NotFound:
            pass

    def delete_volume(self, volume_id: str) -> None:
        try:
            self._call("DELETE", f"/volume/{volume_id}", idempotent=True)
        except NotFound:
            pass
        finally:
            self.invalidate("volumes")


def listed(body: Any, key: str, endpoint: str) -> list[dict]:
    """The list under `key` (or a bare list); one clear error for anything else."""
    return shared.listed(body, key, "valdi", endpoint)


def normal_vm(vm: dict) -> dict:
    """Statuses compared in lower case: `Running` and `running` are one state."""
    status = vm.get("status")
    return {**vm, "status": status.lower()} if isinstance(status, str) else vm


MAX_CONTENTS = 100_000  # entries a walk of one volume reads at most
_FOLDER_GROUPS = ("folders", "dirs", "directories", "prefixes", "commonprefixes", "subdirs")


def contents_items(contents: Any) -> list:
    """`contents` as a list of items: a list as is; an object of lists ({files: [...],
    folders: [...]}) joined, folder names marked with a trailing /; an object keyed by
    path ({path: {size, etag...}} or {path: size}) turned into items with a path."""
    if contents is None:
        return []
    if isinstance(contents, list):
        return contents
    if not isinstance(contents, dict):
        raise ApiError(f"volume contents are {type(contents).__name__}, neither a list nor an object",
                       api="valdi", endpoint="GET /volume/{id}?include_contents=True")
    if contents and all(isinstance(v, list) for v in contents.values()):
        items: list = []
        for group, values in contents.items():
            folders = group.lower() in _FOLDER_GROUPS
            items.extend((v.rstrip("/") + "/") if folders and isinstance(v, str) else
                         ({**v, "type": "folder"} if folders and isinstance(v, dict) else v) for v in values)
        return items
    return [{**v, "path": k} if isinstance(v, dict) else
            ({"path": k, "size": v} if isinstance(v, int) and not isinstance(v, bool) else k)
            for k, v in contents.items()]


_PATH_KEYS = ("path", "Key", "key", "name", "Name")
_SIZE_KEYS = ("size", "Size", "content_length")
_ETAG_KEYS = ("etag", "ETag", "Etag", "md5")


def normal_entry(entry: Any) -> dict:
    """One contents item as {path, type, size?, etag?}. A folder is a path ending in /
    (or type folder); an etag loses S3's quotes; an absent one stays absent."""
    if isinstance(entry, str):
        path: Any = entry
        raw: dict = {}
    elif isinstance(entry, dict):
        raw = entry
        path = next((entry[k] for k in _PATH_KEYS if isinstance(entry.get(k), str)), None)
    else:
        path = None
    if not path:
        raise ApiError(f"a volume contents item has no path: got {str(entry)[:80]!r}", api="valdi",
                       endpoint="GET /volume/{id}?include_contents=True")
    kind = raw.get("type") if raw.get("type") in ("file", "folder") else (
        "folder" if path.endswith("/") or raw.get("is_dir") or raw.get("type") in ("dir", "directory", "prefix")
        else "file")
    out: dict[str, Any] = {"path": path, "type": kind}
    size = next((raw[k] for k in _SIZE_KEYS if isinstance(raw.get(k), int)), None)
    etag = next((raw[k] for k in _ETAG_KEYS if isinstance(raw.get(k), str) and raw[k].strip('"')), None)
    if size is not None:
        out["size"] = size
    if etag is not None and "-" not in etag:  # a multipart upload's ETag is no MD5: compare sizes
        out["etag"] = etag.strip('"')
    return out


def connect(config: dict[str, Any], env: Mapping[str, str] | None = None) -> ValdiClient:
    """A client from the manifest's `providers.valdi` block; missing fields fall back to
    VALDI_ENDPOINT, VALDI_EMAIL and VALDI_PASSWORD. Makes no request."""
    env = os.environ if env is None else env
    endpoint = config.get("endpoint") or env.get("VALDI_ENDPOINT") or DEFAULT_ENDPOINT
    return ValdiClient(str(endpoint), config.get("email") or env.get("VALDI_EMAIL"),
                       config.get("password") or env.get("VALDI_PASSWORD"),
                       vm_timeout=float(config.get("vm_timeout") or 1200.0))


__all__ = ["ValdiClient", "connect", "token_expiry", "encode_path"]
