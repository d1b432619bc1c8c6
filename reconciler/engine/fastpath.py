"""The planner's fast path: a resource whose desired spec is the one applied last, and whose
live object reads exactly as it read when a full comparison last found nothing to do, is
a no-op without building a diff.

`seen` maps an address to the digest of (spec, live id, live fields) of its last verified
no-op; the planner fills it as it goes and the runner keeps it (config/cache.py) for the
next plan. The digest is of the live fields as decoded (only what the kinds read), so a
live field the kind compares that moved is a different digest: the full diff runs.
Kinds that read local files (their contents may change under the same spec) never take
it, nor kinds with secret fields or specs holding a sensitive value: a field with a
secret's name, one filled from a sensitive variable or derived from a secret output (the
planner checks that one) -- their digests are kept on disk. Nor anything adopted,
journaled, or asked to be replaced.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, Mapping

import msgspec

from reconciler.config.model import Resource
from reconciler.config.sensitivity import SECRET_NAMES, hidden
from reconciler.providers.contract import Kind, Live
from reconciler.state.base import ResourceState

_encode = msgspec.json.Encoder().encode


def noop_digest(spec: dict, live: Live) -> str | None:
    """A digest of what a kind's diff reads; None when something in it has no JSON form
    (an unknown value, a reference): such a resource takes the full path."""
    try:
        data = _encode((spec, live.id, live.attrs, live.outputs, live.local, live.adopted))
    except (TypeError, ValueError, OverflowError):
        return None
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def eligible(resource: Resource, spec: dict, prior: ResourceState | None, live: Live | None, kind: Kind,
             pending: Any, names: bool = True) -> bool:
    """The spec is the one applied last (the state's record), nothing is in flight, the
    kind's comparison depends on nothing but the spec and the live object, and no secret
    would enter a digest. `names=False`: the caller then asks `unchanged`, whose digest
    matches only a spec remembered here, which had no field with a secret's name."""
    return (prior is not None and live is not None and pending is None and not kind.local_files
            and not kind.sensitive and not resource.sensitive_paths and spec == prior.last_applied
            and (not names or not _secret_named(spec)))


def _secret_named(value: Any) -> bool:
    """A field the one sensitivity rule hides by its name (a datum's `properties.token`):
    `hidden(path, SECRET_NAMES)` of every leaf's path, asked of each key once (a path's
    segments are its keys' segments; list indices are digits, never a secret's name)."""
    if isinstance(value, dict):
        if not _PLAIN_KEYS.issuperset(value):  # keys seen before: no call each
            for k in value:
                if _secret_key(k):
                    return True
            if len(_PLAIN_KEYS) < 4096:  # bounded, like the cache below
                _PLAIN_KEYS.update(value)
        for v in value.values():
            if isinstance(v, _CONTAINERS) and _secret_named(v):
                return True
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, _CONTAINERS) and _secret_named(v):
                return True
    return False


_CONTAINERS = (dict, list, tuple)
_PLAIN_KEYS: set[Any] = set()  # keys _secret_key said no to


@lru_cache(maxsize=4096)
def _secret_key(key: Any) -> bool:
    return hidden(str(key), SECRET_NAMES)


def unchanged(address: str, spec: dict, live: Live, seen: Mapping[str, str]) -> bool:
    """The digest remembered for `address` (only ever of an eligible spec: remember's
    callers ask eligible with names) is this spec's and live object's."""
    digest = seen.get(address)
    return digest is not None and digest == noop_digest(spec, live)


def remember(address: str, spec: dict, live: Live, seen: dict[str, str]) -> None:
    digest = noop_digest(spec, live)
    if digest is not None:
        seen[address] = digest
