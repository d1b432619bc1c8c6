"""VALDI's objects in the emulator: SSH keys, VMs and volumes (accounts: valdi_auth.py).

Documents live in the shared Store under kinds prefixed `valdi_`, so they survive a
restart; deleted or destroyed objects are removed. Volume objects are Store blobs under
"valdi/<user_id>/<bucket_name>/<path>" (folders: zero-byte blobs ending in "/"), so the
S3 admin surface (/_emulator/s3/valdi/...) sees them.

VM status is computed lazily from stored timestamps and the delays configured *now*:
"provisioning" until vm_provision_delay has passed, "starting" for vm_start_delay after
a start, then "running"; a transition is written back the first time it is seen.
Capacity is counted from the live VMs themselves (their `claim`), never kept apart.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import random
import re
import secrets
import string
import time
import uuid

from reconciler.emulator import valdi_catalog as cat
from reconciler.emulator.core import EmulatorConfig, HTTPError, iso_naive
from reconciler.emulator.store import Store

SSHKEY, VM, VOLUME = "valdi_sshkey", "valdi_vm", "valdi_volume"
BLOB_BUCKET = "valdi"


def not_found(what: str) -> HTTPError:
    return HTTPError(404, {"detail": f"{what} not found"})


def owned(store: Store, kind: str, id_: str, user: dict, what: str) -> dict:
    doc = store.get(kind, id_)
    if doc is None or doc["user_id"] != user["user_id"]:
        raise not_found(what)
    return doc


# -- SSH keys ---------------------------------------------------------------------------------
PUBLIC_KEY = re.compile(r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-[A-Za-z0-9-]+) ([A-Za-z0-9+/]+={0,2})( [^\r\n]*)?$")


def check_public_key(text: str) -> str:
    key = text.strip()
    match = PUBLIC_KEY.match(key)
    valid = match is not None
    if match is not None:
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            valid = False
    if not valid:
        raise HTTPError(400, {"detail": "public_key: not an OpenSSH public key "
                                        "(allowed: 'ssh-rsa|ssh-ed25519|ecdsa-sha2-* <base64> [comment]')"})
    return key


def generate_keypair() -> tuple[str, str]:
    """(private key PEM, OpenSSH public key): a real RSA pair when `cryptography` is
    installed, else a well-formed stand-in (the emulator never logs in with it)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        return _stand_in_keypair()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


def _stand_in_keypair() -> tuple[str, str]:
    def field(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data
    modulus = b"\x00" + bytes([0xC0 | secrets.randbits(6)]) + os.urandom(255)
    blob = field(b"ssh-rsa") + field(b"\x01\x00\x01") + field(modulus)
    body = base64.b64encode(os.urandom(1190)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    private = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----\n"
    return private, "ssh-rsa " + base64.b64encode(blob).decode()


def add_sshkey(store: Store, user: dict, name: str, public_key: str) -> dict:
    doc = {"ssh_key_id": str(uuid.uuid4()), "user_id": user["user_id"], "name": name,
           "public_key": public_key, "created_at": iso_naive()}
    store.put(SSHKEY, doc["ssh_key_id"], doc)
    return doc


def sshkeys_of(store: Store, user: dict) -> list[dict]:
    return [k for k in store.iter_raw(SSHKEY) if k["user_id"] == user["user_id"]]


def render_sshkey(doc: dict) -> dict:
    return {k: doc[k] for k in ("name", "public_key", "ssh_key_id", "created_at")}


# -- capacity ---------------------------------------------------------------------------------
def used(store: Store, provider_id: str, item_id: str, *, besides: str | None = None) -> int:
    total = 0
    for vm in store.iter_raw(VM):
        claim = vm["claim"]
        if vm["provider_id"] != provider_id or claim["item"] != item_id or vm["server"] == besides:
            continue
        if vm["state"] != "stopped" or claim["while_stopped"]:
            total += claim["amount"]
    return total


def free(store: Store, provider_id: str, item: dict, *, besides: str | None = None) -> int | None:
    capacity = cat.item_capacity(provider_id, item)
    if capacity is None:
        return None
    return max(0, capacity - used(store, provider_id, item[cat.ITEM_KEY[provider_id]], besides=besides))


def check_capacity(store: Store, provider_id: str, claim: dict, *, besides: str | None = None) -> None:
    item = cat.item_of(provider_id, claim["item"])
    left = free(store, provider_id, item, besides=besides) if item else None
    if left is not None and left < claim["amount"]:
        unit = "GPUs" if provider_id == cat.PROVIDER_B else "VMs"
        raise HTTPError(409, {"detail": f"no capacity: {claim['item']} has {left} {unit} free, "
                                        f"{claim['amount']} needed"})


# -- VMs ---------------------------------------------------------------------------------------
VM_FIELDS = ("server", "ip", "provider_id", "ssh_key_id", "name", "user_provided_name", "gpu_count", "gpu_model",
             "pretty_gpu_name", "vcpus", "ram", "storage", "operating_system", "port_forwards", "all_inclusive",
             "cpu_cost", "ram_cost", "storage_cost", "gpu_cost", "all_inclusive_running_cost",
             "all_inclusive_stopped_cost", "last_stopped_time", "last_restarted_time", "created_at")


def _vm_name() -> str:
    return "valdi-customer-" + "".join(random.choice(string.ascii_letters + string.digits + "!%")
                                       for _ in range(6))


def _address(ipv4: bool) -> str:
    if ipv4:
        return f"203.0.113.{random.randint(2, 254)}"
    return f"2a0b:d40:0:{random.randint(1, 0xffff):x}::{random.randint(1, 0xffff):x}"


def add_vm(store: Store, user: dict, provider_id: str, user_provided_name: str, fields: dict) -> dict:
    """Take capacity and create the VM, atomically (two provisions cannot share the last slot)."""
    now = time.time()
    with store.lock:
        check_capacity(store, provider_id, fields["claim"])
        vm = {"server": str(uuid.uuid4()), "user_id": user["user_id"], "provider_id": provider_id,
              "user_provided_name": user_provided_name, "name": _vm_name(),
              "ip": _address(fields.get("ipv4", True)),
              **{k: v for k, v in fields.items() if k != "ipv4"},
              "last_stopped_time": None, "last_restarted_time": None, "created_at": iso_naive(now),
              "state": "provisioning", "since": now}
        store.put(VM, vm["server"], vm)
    return vm


def status(vm: dict, config: EmulatorConfig, now: float) -> str:
    if vm["state"] == "provisioning" and now >= vm["since"] + config.vm_provision_delay:
        return config.vm_final_state or "running"
    if vm["state"] == "starting" and now >= vm["since"] + config.vm_start_delay:
        return "running"
    return vm["state"]


def settle(store: Store, vm: dict, config: EmulatorConfig) -> dict | None:
    """The VM with its status as of now, written back when it changed; None once a
    terminating VM is gone."""
    now = time.time()
    if vm["state"] == "terminating" and now >= vm["since"] + config.vm_destroy_delay:
        store.delete(VM, vm["server"])
        return None
    current = status(vm, config, now)
    if current != vm["state"]:
        vm = {**vm, "state": current, "since": now}
        store.put(VM, vm["server"], vm)
    return vm


def render_vm(vm: dict) -> dict:
    return {**{k: vm[k] for k in VM_FIELDS}, "status": vm["state"], **vm["extras"]}


def terminate_vm(store: Store, vm: dict) -> None:
    """Destroy asked: `terminating` (still holding its capacity) until settle removes it."""
    store.put(VM, vm["server"], {**vm, "state": "terminating", "since": time.time()})


def _settled(store: Store, vm: dict, config: EmulatorConfig) -> dict:
    found = settle(store, vm, config)
    if found is None:
        raise not_found("VM")
    if found["state"] == "terminating":
        raise HTTPError(409, {"detail": "the VM is being destroyed"})
    return found


def stop_vm(store: Store, vm: dict, config: EmulatorConfig) -> None:
    with store.lock:
        vm = _settled(store, vm, config)
        if vm["state"] == "provisioning":
            raise HTTPError(409, {"detail": "the VM is still provisioning; stop it once it is running"})
        if vm["state"] != "stopped":
            store.put(VM, vm["server"], {**vm, "state": "stopped", "since": time.time(),
                                         "last_stopped_time": iso_naive()})


def start_vm(store: Store, vm: dict, config: EmulatorConfig) -> None:
    with store.lock:
        vm = _settled(store, vm, config)
        if vm["state"] == "provisioning":
            raise HTTPError(409, {"detail": "the VM is still provisioning; it starts by itself"})
        if vm["state"] != "stopped":
            return  # running or starting already: nothing to do
        if not vm["claim"]["while_stopped"]:  # 66730e5d gave its GPUs back when it stopped
            check_capacity(store, vm["provider_id"], vm["claim"], besides=vm["server"])
        store.put(VM, vm["server"], {**vm, "state": "starting", "since": time.time(),
                                     "last_restarted_time": iso_naive()})


# -- volumes -----------------------------------------------------------------------------------
VOLUME_FIELDS = ("volume_id", "bucket_name", "access_key_id", "secret_access_key", "created_at", "deleted_at")


def add_volume(store: Store, user: dict, bucket_name: str) -> dict:
    with store.lock:
        if any(v["user_id"] == user["user_id"] and v["bucket_name"] == bucket_name for v in store.iter_raw(VOLUME)):
            raise HTTPError(409, {"detail": f"a volume named {bucket_name!r} already exists"})
        alphabet = string.ascii_lowercase + string.digits
        doc = {"volume_id": str(uuid.uuid4()), "user_id": user["user_id"], "bucket_name": bucket_name,
               "access_key_id": "".join(secrets.choice(alphabet) for _ in range(28)),
               "secret_access_key": "".join(secrets.choice(alphabet) for _ in range(53)),
               "created_at": iso_naive(), "deleted_at": None}
        store.put(VOLUME, doc["volume_id"], doc)
    return doc


def render_volume(doc: dict, *, with_keys: bool = False, contents: list | dict | None = None) -> dict:
    body = {k: doc[k] for k in VOLUME_FIELDS}
    if not with_keys:
        body["access_key_id"] = body["secret_access_key"] = None
    body["contents"] = contents
    return body


def volume_holding(store: Store, user_id: int, key: str) -> dict | None:
    """The volume an object key "<bucket_name>/<path>" belongs to (a bucket name may hold
    '/': the longest one that is a prefix of the key)."""
    found = [v for v in store.iter_raw(VOLUME)
             if v["user_id"] == user_id and key.startswith(v["bucket_name"] + "/") and key[len(v["bucket_name"]) + 1:]]
    return max(found, key=lambda v: len(v["bucket_name"]), default=None)


def prefix_of(volume: dict) -> str:
    """The blob-key prefix of a volume's objects (the gateway's bucket + key layout)."""
    return f"{BLOB_BUCKET}/{volume['user_id']}/{volume['bucket_name']}/"


def decode_path(encoded: str) -> str:
    """A base64 path segment: URL-safe or standard alphabet, padding optional."""
    text = encoded.strip()
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        path = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise HTTPError(400, {"detail": f"path: {encoded!r} is not base64 (use base64.urlsafe_b64encode)"}) from None
    path = path.lstrip("/")
    if not path or any(part in (".", "..") for part in path.split("/")):
        raise HTTPError(400, {"detail": "path: a relative path inside the volume is required"})
    return path


def contents(store: Store, volume: dict, subdir: str | None = None) -> list[dict]:
    """Every file and folder (recursive, sorted), paths relative to the volume root.
    Folders come from folder markers and from the paths of files."""
    root = prefix_of(volume)
    scope = (subdir or "").strip("/")
    scope = scope + "/" if scope else ""
    entries: dict[str, dict] = {}
    for key, size in store.list_blobs(root + scope):
        path = key[len(root):]
        parts = path.rstrip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth]) + "/"
            if folder.startswith(scope) and folder != scope:
                entries.setdefault(folder, {"path": folder, "type": "folder"})
        if path.endswith("/"):
            if path != scope:
                entries.setdefault(path, {"path": path, "type": "folder"})
            continue
        meta = store.blob_meta(key) or {}
        etag = meta.get("etag") or hashlib.md5(store.get_blob(key) or b"").hexdigest()
        entries[path] = {"path": path, "type": "file", "size": size, "etag": etag,
                         "last_modified": meta.get("last_modified") or volume["created_at"]}
    return [entries[p] for p in sorted(entries)]


def one_level(entries: list[dict], subdir: str | None) -> list[dict]:
    """Only the direct children of `subdir` (the volume root when None)."""
    scope = (subdir or "").strip("/")
    scope = scope + "/" if scope else ""
    return [e for e in entries if "/" not in e["path"][len(scope):].rstrip("/")]


def put_object(store: Store, key: str, body: bytes) -> None:
    store.put_blob(key, body, {"etag": hashlib.md5(body).hexdigest(), "last_modified": iso_naive()})


def make_folder(store: Store, volume: dict, path: str) -> None:
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        key = prefix_of(volume) + "/".join(parts[:depth]) + "/"
        if store.blob_meta(key) is None:
            put_object(store, key, b"")


def delete_path(store: Store, volume: dict, path: str, path_type: str | None) -> None:
    if path_type not in ("PRE", "OBJ"):
        raise HTTPError(400, {"detail": f"path_type: {cat.what_is_wrong(path_type)} (allowed: PRE, OBJ)"})
    key = prefix_of(volume) + path
    if path_type == "OBJ":
        if store.blob_meta(key) is None:
            raise not_found(f"object {path!r}")
        store.delete_blobs(key, exact=True)
    else:
        store.delete_blobs(key.rstrip("/") + "/")


def delete_volume(store: Store, volume: dict) -> None:
    with store.lock:
        store.delete_blobs(prefix_of(volume))
        store.delete(VOLUME, volume["volume_id"])
