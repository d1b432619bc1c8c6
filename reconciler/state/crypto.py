"""Secrets in the state (volume keys, generated private keys) encrypted at rest when
RECONCILER_STATE_KEY is set: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`)
with a key derived from the variable by HKDF-SHA256. Sealed per resource: its `secrets`,
and the secret-looking values of its last applied spec (a VM's details.password), which
the kinds need for three-way diffs; everything else stays readable for reviews and
`state show`."""
from __future__ import annotations

import base64
import copy
import os
from typing import Mapping

from reconciler.errors import StateError

ENV = "RECONCILER_STATE_KEY"
MARK = "$fernet"
SEALED = "(sealed)"  # stands in the readable document where a last-applied secret was
APPLIED = "$last_applied"  # inside the sealed blob: [path, value] pairs taken out of last_applied


def _take_secrets(value, path: list, found: list, derived: frozenset = frozenset()):
    """A copy of `value` with secret-looking string fields, and the fields at `derived`
    (values built from a secret, dotted paths), replaced by SEALED."""
    from reconciler.config.sensitivity import secret_key
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if (isinstance(v, str) and secret_key(str(k))) or _dotted(path + [k]) in derived:
                found.append([path + [k], v])
                out[k] = SEALED
            else:
                out[k] = _take_secrets(v, path + [k], found, derived)
        return out
    if isinstance(value, list):
        out_list = []
        for i, v in enumerate(value):
            if _dotted(path + [i]) in derived:
                found.append([path + [i], v])
                out_list.append(SEALED)
            else:
                out_list.append(_take_secrets(v, path + [i], found, derived))
        return out_list
    return value


def _dotted(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _put_back(value, path: list, secret) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = secret


def secrets_encrypted(env: Mapping[str, str] | None = None) -> bool:
    return bool((env if env is not None else os.environ).get(ENV))


def _fernet(env: Mapping[str, str] | None):
    secret = (env if env is not None else os.environ).get(ENV)
    if not secret:
        return None
    try:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        raise StateError(f"{ENV} is set but `cryptography` is not installed: "
                         "pip install 'reconciler[crypto]'") from None
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"reconciler-state", info=b"secrets").derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_doc(doc: dict, env: Mapping[str, str] | None = None) -> dict:
    fernet = _fernet(env)
    if fernet is None:
        return doc
    import json
    out = copy.deepcopy(doc)
    for entry in out.get("resources", {}).values():
        taken: list = []
        entry["last_applied"] = _take_secrets(entry.get("last_applied") or {}, [], taken,
                                              frozenset(entry.get("sensitive_paths") or ()))
        blob = dict(entry.get("secrets") or {})
        if taken:
            blob[APPLIED] = taken
        if blob:
            entry["secrets"] = {MARK: fernet.encrypt(json.dumps(blob).encode()).decode()}
    for entry in (out.get("outputs") or {}).values():  # a sensitive top-level output
        if isinstance(entry, dict) and entry.get("sensitive") and "value" in entry:
            entry[MARK] = fernet.encrypt(json.dumps(entry.pop("value")).encode()).decode()
    for entry in out.get("pending", {}).values():  # a journaled create's spec
        taken = []
        entry["spec"] = _take_secrets(entry.get("spec") or {}, [], taken, frozenset(entry.get("sensitive_paths") or ()))
        if taken:
            entry[MARK] = fernet.encrypt(json.dumps(taken).encode()).decode()
    return out


def open_doc(doc: dict, env: Mapping[str, str] | None = None) -> dict:
    sealed = [e for e in doc.get("resources", {}).values() if MARK in (e.get("secrets") or {})] + \
        [e for e in doc.get("pending", {}).values() if MARK in e] + \
        [e for e in (doc.get("outputs") or {}).values() if isinstance(e, dict) and MARK in e]
    if not sealed:
        return doc
    fernet = _fernet(env)
    if fernet is None:
        raise StateError(f"the state's secrets are encrypted: set {ENV} to the key they were written with")
    import json

    from cryptography.fernet import InvalidToken
    out = copy.deepcopy(doc)
    for entry in out["resources"].values():
        if MARK in (entry.get("secrets") or {}):
            try:
                blob = json.loads(fernet.decrypt(entry["secrets"][MARK].encode()))
            except InvalidToken:
                raise StateError(f"{ENV} does not decrypt the state's secrets (wrong key)") from None
            for path, secret in blob.pop(APPLIED, []):
                _put_back(entry["last_applied"], path, secret)
            entry["secrets"] = blob
    for entry in (out.get("outputs") or {}).values():
        if isinstance(entry, dict) and MARK in entry:
            try:
                entry["value"] = json.loads(fernet.decrypt(entry.pop(MARK).encode()))
            except InvalidToken:
                raise StateError(f"{ENV} does not decrypt the state's secrets (wrong key)") from None
    for entry in out.get("pending", {}).values():
        if MARK in entry:
            try:
                taken = json.loads(fernet.decrypt(entry.pop(MARK).encode()))
            except InvalidToken:
                raise StateError(f"{ENV} does not decrypt the state's secrets (wrong key)") from None
            for path, secret in taken:
                _put_back(entry["spec"], path, secret)
    return out
