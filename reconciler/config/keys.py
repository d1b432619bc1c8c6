"""The one secret that vouches for what reconciler itself wrote: signed plan files
(reconciler.plan.signing) and the ledger of local files it wrote (config.localfiles).
Never stored beside what it vouches for.

It is `RECONCILER_PLAN_KEY`, else one derived from `RECONCILER_STATE_KEY` (a pipeline
that encrypts its state needs no second secret), else this machine's own key, made
once in the user's config folder (mode 0600). Each use derives its own key from it
(`purpose`), so a ledger entry is never a valid plan signature.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Mapping

from reconciler.errors import PlanError

PLAN_ENV = "RECONCILER_PLAN_KEY"
STATE_ENV = "RECONCILER_STATE_KEY"
MACHINE = "machine"


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


def find(env: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(the secret, where it came from: PLAN_ENV, STATE_ENV or MACHINE). The source may
    be named in files and messages; the secret never is. PlanError when the machine key
    can be neither read nor made."""
    env = os.environ if env is None else env
    if env.get(PLAN_ENV):
        return env[PLAN_ENV].encode(), PLAN_ENV
    if env.get(STATE_ENV):  # its own derivation: the plan key never equals the state's
        return hmac.new(env[STATE_ENV].encode(), b"reconciler plan signing key", hashlib.sha256).digest(), STATE_ENV
    return _machine_key(env), MACHINE


def derived(secret: bytes, purpose: str) -> bytes:
    """A key for one use only, from the secret `find` returned."""
    return hmac.new(secret, b"reconciler\0" + purpose.encode(), hashlib.sha256).digest()
