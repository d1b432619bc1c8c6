"""VALDI accounts and their JWTs in the emulator.

Tokens follow the layout the official CLI decodes (api-reference B.0, checklist E13):
header {"alg": "HS256", "typ": "JWT"}, payload {"data": {"user_id", "creation_time"},
"purpose": "access_token" | "refresh-token", "exp": YYYYMMDDHHMMSS as an int, UTC}.

`exp` only has 1-second resolution, so the emulator judges expiry from `creation_time`
(microseconds) plus the TTL configured *now*: a test can set a 1-second TTL and see a
token die on time. The stamped `exp` is rounded down, so the CLI (which refreshes when
utcnow() > exp) always refreshes before the emulator would refuse the token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timezone

from reconciler.emulator.core import HTTPError, iso_naive
from reconciler.emulator.store import Store

USER = "valdi_user"
ACCESS, REFRESH = "access_token", "refresh-token"
_KEY_DOC = "valdi_signing_key"  # kept under "_meta": survives a restart, not a VALDI object
_CREATION = "%Y-%m-%d %H:%M:%S.%f"
_EXP = "%Y%m%d%H%M%S"


class TokenError(Exception):
    """A token the emulator refuses; the message is safe to show (it holds no token)."""


def signing_key(store: Store, remembered: dict) -> bytes:
    """The emulator's secret for JWTs and presigned links. Stored, so tokens and links
    outlive a restart; remembered, so a reset of the store does not change it."""
    doc = store.get("_meta", _KEY_DOC)
    if doc is None:
        with store.lock:
            doc = store.get("_meta", _KEY_DOC) or {"key": remembered.get("key") or secrets.token_hex(32)}
            store.put("_meta", _KEY_DOC, doc)
    remembered["key"] = doc["key"]
    return bytes.fromhex(doc["key"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def issue(key: bytes, user_id: int, purpose: str, ttl: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    created = datetime.fromtimestamp(now, timezone.utc)
    try:
        expires = datetime.fromtimestamp(now + ttl, timezone.utc)
    except (OverflowError, OSError, ValueError):
        expires = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    payload = {"data": {"user_id": user_id, "creation_time": created.strftime(_CREATION)},
               "purpose": purpose, "exp": int(expires.strftime(_EXP))}
    signing_input = _b64(_compact({"alg": "HS256", "typ": "JWT"})) + "." + _b64(_compact(payload))
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def verify(key: bytes, token: str, purpose: str, ttl: float, now: float | None = None) -> int:
    """The user id a valid, unexpired token of that purpose carries; TokenError otherwise."""
    now = time.time() if now is None else now
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenError("Could not validate credentials")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(_unb64(parts[2]), expected)
        payload = json.loads(_unb64(parts[1])) if valid else None
        if payload is None or payload.get("purpose") != purpose:
            raise TokenError("Could not validate credentials")
        created = datetime.strptime(payload["data"]["creation_time"], _CREATION) \
            .replace(tzinfo=timezone.utc).timestamp()
        stamped = datetime.strptime(str(payload["exp"]), _EXP).replace(tzinfo=timezone.utc).timestamp()
        user_id = int(payload["data"]["user_id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError("Could not validate credentials") from None
    if now >= created + ttl or now >= stamped + 1:
        raise TokenError("Token expired")
    return user_id


# -- accounts ------------------------------------------------------------------------
def _hash(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def add_user(store: Store, email: str, password: str, user_id: int | None = None) -> dict:
    with store.lock:
        if user_by_email(store, email) is not None:
            raise HTTPError(409, {"detail": f"an account with email {email} already exists"})
        if user_id is None:
            user_id = 1 + max([u["user_id"] for u in store.iter_raw(USER)] or [0])
        elif store.get(USER, str(user_id)) is not None:
            raise HTTPError(409, {"detail": f"user_id {user_id} is taken"})
        salt = secrets.token_hex(8)
        user = {"user_id": int(user_id), "email": email, "salt": salt, "password_sha256": _hash(password, salt),
                "created_at": iso_naive()}
        store.put(USER, str(user_id), user)
    return user


def user_by_email(store: Store, email: str) -> dict | None:
    wanted = email.strip().lower()
    return next((u for u in store.iter_raw(USER) if u["email"].lower() == wanted), None)


def password_matches(user: dict, password: str) -> bool:
    return hmac.compare_digest(user["password_sha256"], _hash(password, user["salt"]))


def account(user: dict) -> dict:
    """GET /account: the CLI needs `user_id`; the rest is the emulator's choice."""
    return {"user_id": user["user_id"], "email": user["email"], "first_name": "", "last_name": "",
            "created_at": user["created_at"]}
