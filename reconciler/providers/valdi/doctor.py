"""`reconciler doctor` for VALDI: login and refresh, then every listing a plan reads, with
the fields the kinds read in each. Read-only: login and refresh are the only POSTs."""
from __future__ import annotations

from reconciler.providers.doctor import Checks, Finding
from reconciler.providers.valdi.client import ValdiClient, contents_items, normal_entry
from reconciler.providers.valdi.vm import VM_STATES, vm_status

COSTS = {"flavor_id": ("running_cost", "stopped_cost"), "shape_code": ("running_cost", "stopped_cost"),
         "hostnode": ("cpu_cost", "ram_cost", "storage_cost", "gpu_cost"),
         "machine_type": ("vcpu_cost", "ram_cost", "storage_cost", "gpu_cost")}
STR = (str,)


def _refreshed(api: ValdiClient) -> bool:
    api.refresh_now()  # raises when refreshing fails
    return True


def doctor(api: ValdiClient) -> list[Finding]:
    c = Checks("valdi")
    if c.call("login", lambda: api._token()) is not None:
        c.ok("login", "email and password accepted")
    else:
        return c.findings  # nothing else can be asked
    if c.call("refresh", lambda: _refreshed(api)):
        c.ok("refresh", "the refresh token gives a new access token")
    account = c.call("GET /account", lambda: api._call("GET", "/account"))
    if account is not None and c.fields("GET /account", "the account", account, {"user_id": (int, str)}):
        c.ok("GET /account", "the account answers")
    _devices(c, api)
    _listing(c, api, "GET /sshkeys", "/sshkeys", "ssh_keys", "an SSH key",
             {"ssh_key_id": STR, "name": STR, "public_key": STR})
    vms = _listing(c, api, "GET /v1/vm", "/v1/vm", "virtual_machines", "a VM",
                   {"server": STR, "status": STR, "user_provided_name": STR, "provider_id": STR})
    _vm_shapes(c, vms)
    volumes = _listing(c, api, "GET /volume", "/volume", "volumes", "a volume", {"volume_id": STR, "bucket_name": STR})
    if volumes:
        _contents(c, api, volumes[0]["volume_id"])
    return c.findings


def _vm_shapes(c: Checks, vms: list[dict]) -> None:
    """Status words the VM kind reads specially, and details the listing does not echo."""
    words = [vm["status"] for vm in vms]
    capitalised = [w for w in words if w != w.lower() and w.lower() in VM_STATES]
    if capitalised:
        c.note("GET /v1/vm", f"VM status {capitalised[0]!r} is capitalised; read case-insensitively",
               "valdi-vm-status-case")
    unknown = sorted({w for vm, w in zip(vms, words) if not vm_status(vm).known})
    if unknown:
        c.note("GET /v1/vm", f"VM status {', '.join(map(repr, unknown))} is not one the tool knows: read as in "
               "transition (waited on up to the timeout, never a failure or a replacement)",
               "valdi-vm-state-unrecognised")
    if vms and not any(k in vm for vm in vms for k in ("flavor_id", "hostnode", "config", "machine_type")):
        c.note("GET /v1/vm", "VMs are listed without the details they were provisioned with (seed 002's "
               "fields only): those details are read as last applied", "valdi-vm-listing-seed-fields")


def _listing(c: Checks, api: ValdiClient, check: str, path: str, key: str, what: str, wanted: dict) -> list[dict]:
    body = c.call(check, lambda: api._call("GET", path))
    if body is None:
        return []
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        c.problem(check, f"the answer has no list `{key}`")
        return []
    good = [i for i in items if c.fields(check, what, i, wanted)]
    if len(good) == len(items):
        c.ok(check, f"{len(items)} listed")
    return good


def _devices(c: Checks, api: ValdiClient) -> None:
    check = "GET /v1/devices/available"
    body = c.call(check, lambda: api._call("GET", "/v1/devices/available"))
    if body is None:
        return
    providers = body.get("devices_by_provider") if isinstance(body, dict) else None
    if not isinstance(providers, list):
        c.problem(check, "the answer has no list `devices_by_provider`")
        return
    unpriced: set[str] = set()
    for p in providers:
        if not c.fields(check, "a provider", p, {"provider_id": STR, "provider_devices": (list,)}):
            continue
        for device in p["provider_devices"]:
            style = next((k for k in COSTS if isinstance(device, dict) and k in device), None)
            if style is None:
                c.problem(check, f"a device of provider {p['provider_id']} has none of "
                                 f"{', '.join(COSTS)}: the VM kind cannot tell its shape")
                continue
            unpriced |= {f for f in COSTS[style] if f not in device}
    if unpriced:
        c.note(check, f"no {', '.join(sorted(unpriced))} in the catalog: plans say the cost is unknown",
               "valdi-catalog-no-unit-costs")
    c.ok(check, f"{len(providers)} provider(s)")


def _contents(c: Checks, api: ValdiClient, volume_id: str) -> None:
    check = "GET /volume/{id}?include_contents=True"
    body = c.call(check, lambda: api._call("GET", f"/volume/{volume_id}", params={"include_contents": "True"}))
    raw = (body or {}).get("contents") if isinstance(body, dict) else None
    if body is None:
        return
    if isinstance(raw, dict):
        c.note(check, "`contents` is an object, not a list: its entries are read by path", "valdi-contents-object")
    items = c.call(check, lambda: contents_items(raw))
    if items is None:
        return
    paths = [i if isinstance(i, str) else str(next((i.get(k) for k in ("path", "Key", "key", "name")
                                                    if isinstance(i, dict) and isinstance(i.get(k), str)), ""))
             for i in items]
    if any(p.endswith("/") or (isinstance(i, dict) and i.get("type") == "folder") for p, i in zip(paths, items)) \
            and not any("/" in p.rstrip("/") for p in paths):
        c.note(check, "contents list the top level only: folders are read one by one with `subdirs`",
               "valdi-contents-toplevel")
    files = [i for i in items or [] if not (isinstance(i, str) and i.endswith("/"))]
    if any(isinstance(i, str) for i in files):
        c.note(check, "contents are plain paths: files are compared by presence only", "valdi-contents-plain")
    elif any(isinstance(i, dict) and "Key" in i for i in files):
        c.note(check, "contents use S3's field names (Key, Size, ETag)", "valdi-contents-s3-style")
    elif any(isinstance(i, dict) and i.get("type") == "file" and "etag" not in i for i in files):
        c.note(check, "contents have no etag: files are compared by size only", "valdi-contents-no-etag")
    if c.call(check, lambda: [normal_entry(i) for i in items or []]) is not None:
        c.ok(check, f"{len(items or [])} item(s) in one volume")
