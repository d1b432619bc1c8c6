"""The state file decoded in one pass: msgspec builds each resource entry as a ResourceState
in C, its types checked as it goes, instead of json.loads building a plain tree that
check() walks and StateDoc.from_dict copies (at 100,000 entries: half the time, and no
second tree alive while the first is converted).

Only the common case takes this road: a document this decoder refuses for any reason (a
wrong type, a number JSON allows but msgspec does not, secrets sealed at rest) returns
None, and the reader decodes it the general way, which finds the same document or names
the problem exactly as before.
"""
from __future__ import annotations

from typing import Any, Mapping

import msgspec

from reconciler.state.base import ResourceState, StateDoc
from reconciler.state.check import check
from reconciler.state.crypto import MARK


class _Document(msgspec.Struct):
    """The top level: resources typed (check()'s rules for an entry are these types), the
    rest as it is, for check() and StateDoc.from_dict."""

    resources: dict[str, ResourceState] = {}
    version: Any = msgspec.UNSET
    lineage: Any = msgspec.UNSET
    serial: Any = msgspec.UNSET
    pending: Any = msgspec.UNSET
    outputs: Any = msgspec.UNSET
    forgotten: Any = msgspec.UNSET
    expired: Any = msgspec.UNSET
    events: Any = msgspec.UNSET


_decoder = msgspec.json.Decoder(_Document)
_REST = tuple(f for f in _Document.__struct_fields__ if f != "resources")


def fast_read(text: str, where: str, version: int, specs: Mapping[str, Any] | None = None) -> StateDoc | None:
    """The document, or None: read it the general way (json, check, crypto, from_dict).
    A StateError (check()'s, for a field outside the resources) is the general way's too.
    `specs`: address -> a spec the caller holds (the manifests'); a recorded spec equal to
    it is replaced by it as it is read (one copy in memory: specs are never edited in place)."""
    try:
        top = _decoder.decode(text)
    except (msgspec.MsgspecError, ValueError, TypeError):
        return None
    rest = {f: v for f in _REST if (v := getattr(top, f)) is not msgspec.UNSET}
    if _sealed(top, rest):
        return None  # crypto.open_doc's to open
    rest["resources"] = {}  # the entries are checked by their types
    check(rest, where, version)
    doc = StateDoc.from_dict(rest, where)
    doc.resources = _shared(top.resources, specs or {})
    return doc


def _sealed(top: _Document, rest: dict[str, Any]) -> bool:
    pending, outputs = rest.get("pending"), rest.get("outputs")
    return any(MARK in rs.secrets for rs in top.resources.values()) \
        or (isinstance(pending, dict) and any(isinstance(e, dict) and MARK in e for e in pending.values())) \
        or (isinstance(outputs, dict) and any(isinstance(e, dict) and MARK in e for e in outputs.values()))


_NONE: dict[str, Any] = {}
_EMPTY: list[str] = []


def _shared(resources: dict[str, ResourceState], specs: Mapping[str, Any]) -> dict[str, ResourceState]:
    """Equal strings that repeat across entries kept once (a kind, a file, the id the
    outputs repeat): at 100,000 entries each copy is megabytes. Besides strings, only the
    empty containers are shared; a non-empty one stays its entry's own. (The recorded specs are
    the plan's to share with the manifest's: engine/runner.share_applied.)"""
    seen: dict[str, str] = {}
    put = object.__setattr__  # entries just built, not seen by anyone yet
    for address, rs in resources.items():
        # most entries have no secrets, dependencies nor sensitive paths: one empty
        # container for all (an entry is a value, edited only by replace(): nothing appends)
        if not rs.secrets:
            put(rs, "secrets", _NONE)
        if not rs.depends_on:
            put(rs, "depends_on", _EMPTY)
        if not rs.sensitive_paths:
            put(rs, "sensitive_paths", _EMPTY)
        spec = specs.get(address)
        if spec is not None and rs.last_applied == spec:
            put(rs, "last_applied", spec)
        put(rs, "kind", seen.setdefault(rs.kind, rs.kind))
        if rs.file is not None:
            put(rs, "file", seen.setdefault(rs.file, rs.file))
        outputs = rs.outputs
        if outputs.get("id") == rs.id:
            outputs["id"] = rs.id
        url = rs.last_applied.get("url")
        if type(url) is str and outputs.get("uri") == url:  # a datum's: its URL, said twice
            outputs["uri"] = url
        if len(seen) > 10_000:  # mostly unique values after all: start again
            seen.clear()
    return resources
