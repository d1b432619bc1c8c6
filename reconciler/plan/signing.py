"""Who may write a plan file that `apply` runs: HMAC-SHA256 under a key that is never in
the file.

The key is `RECONCILER_PLAN_KEY`, else one derived from `RECONCILER_STATE_KEY` (a
pipeline that encrypts its state needs no second secret), else this machine's own key,
made once in the user's config folder (mode 0600): a plan made and applied on one
machine is still signed, and a file carried to another machine is refused until both
ends share `RECONCILER_PLAN_KEY`.

Secret values are pinned (keyed hashes, see reconciler.engine.pins) only under a key
the user configured: the machine key sits unencrypted in a home folder, and a pin is
a dictionary attack's target, so without a configured key secrets are left unpinned
and plan and show say that a changed secret will not be detected.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from reconciler.errors import PlanError

PLAN_ENV = "RECONCILER_PLAN_KEY"
STATE_ENV = "RECONCILER_STATE_KEY"
MACHINE = "machine"


@dataclass(frozen=True)
class Key:
    secret: bytes
    source: str  # PLAN_ENV, STATE_ENV or MACHINE: named in messages, never the key

    @property
    def configured(self) -> bool:
        """A key the user set: secrets may be pinned under it."""
        return self.source != MACHINE

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, b"plan-file\0" + body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(body), signature)

    def pin(self, nonce: str, value: Any) -> str:
        """A value's pin: equal values, equal pins in one plan; nothing to guess against
        without the key (the nonce in the file alone gives nothing)."""
        inner = hmac.new(self.secret, b"pin\0" + nonce.encode(), hashlib.sha256).digest()
        body = json.dumps(value, sort_keys=True, default=str).encode()
        return hmac.new(inner, body, hashlib.sha256).hexdigest()[:32]


def machine_key_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "reconciler" / "plan.key"


def _machine_key(env: Mapping[str, str] | None) -> bytes:
    path = machine_key_path(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = path.read_text(encoding="ascii").strip()
            if len(text) < 32:
                raise PlanError(f"{path}: this machine's plan key is damaged; delete it (plans made "
                                f"with it can no longer be applied) or set {PLAN_ENV}") from None
            return text.encode()
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        return path.read_text(encoding="ascii").strip().encode()
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"cannot keep this machine's plan key at {path} "
                        f"({getattr(e, 'strerror', None) or e.__class__.__name__}); set {PLAN_ENV}") from None


def key(env: Mapping[str, str] | None = None) -> Key:
    env = os.environ if env is None else env
    if env.get(PLAN_ENV):
        return Key(env[PLAN_ENV].encode(), PLAN_ENV)
    if env.get(STATE_ENV):  # its own derivation: the plan key never equals the state's
        return Key(hmac.new(env[STATE_ENV].encode(), b"reconciler plan signing key", hashlib.sha256).digest(),
                   STATE_ENV)
    return Key(_machine_key(env), MACHINE)


def unpinned_note() -> str:
    return (f"Secret values are not pinned in this plan file (no {PLAN_ENV} or {STATE_ENV} is set): "
            "a secret changed before apply will not be detected.")
