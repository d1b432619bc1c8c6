"""Who may write a plan file that `apply` runs: HMAC-SHA256 under a key that is never in
the file.

The key is the one reconciler.config.keys finds (`RECONCILER_PLAN_KEY`, else derived
from `RECONCILER_STATE_KEY`, else this machine's own): a plan made and applied on one
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
from dataclasses import dataclass
from typing import Any, Mapping

from reconciler.config.keys import MACHINE, PLAN_ENV, STATE_ENV, find

__all__ = ["Key", "key", "unpinned_note", "MACHINE", "PLAN_ENV", "STATE_ENV"]


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


def key(env: Mapping[str, str] | None = None) -> Key:
    return Key(*find(env))


def unpinned_note() -> str:
    return (f"Secret values are not pinned in this plan file (no {PLAN_ENV} or {STATE_ENV} is set): "
            "a secret changed before apply will not be detected.")
