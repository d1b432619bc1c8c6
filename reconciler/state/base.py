"""The state document and the store protocol every backend (file, PostgreSQL) keeps.

State JSON:
    {"version": 1, "lineage": uuid, "serial": int,
     "resources": {address: {kind, id, last_applied, outputs, secrets, protected,
                             deletion_policy, adopted, depends_on}},
     "pending":   {address: {kind, spec, started_at}},   # journaled creates in flight
     "forgotten": {address: {kind, id, fingerprint}},    # objects we made, then stopped managing
                                                         # (VALDI keys cannot be deleted): a later
                                                         # create of the same content adopts them
     "outputs":   {name: {value, sensitive}},            # top-level outputs, after apply
     "expired":   {address: {at, destroyed_at}},         # expires: destroy carried out
     "events":    [{at, who, event, ...}]}               # overrides, extends, expiries

Writes are compare-and-swap on `serial`: `write(doc)` succeeds only if the stored serial
still equals `doc.serial`; it then increments `doc.serial`.
"""
from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, ContextManager, Protocol

STATE_VERSION = 1
MAX_EVENTS = 200  # guardrail events kept in the document (a PostgreSQL state keeps every serial too)


@dataclass(frozen=True, slots=True)
class ResourceState:
    """One managed object, a value: an edit makes a new one (dataclasses.replace), so the
    file store may reuse an entry's encoded bytes while the same object stays in place.
    Slots: no attribute dict per entry (100,000 entries: 25 MiB)."""

    kind: str
    id: str
    last_applied: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # referenceable, printable
    secrets: dict[str, Any] = field(default_factory=dict)  # sensitive outputs: encrypted at rest
    # when RECONCILER_STATE_KEY is set; never rendered
    protected: bool = False  # prevent_destroy, remembered after the manifest drops it
    deletion_policy: str | None = None
    adopted: bool = False  # taken over, not created by us
    depends_on: list[str] = field(default_factory=list)
    # spec paths whose values derive from a secret: masked by `state show`, sealed at rest
    sensitive_paths: list[str] = field(default_factory=list)
    file: str | None = None  # the manifest file that declares it, relative to the manifest folder
    expires_at: str | None = None  # `expires:`: the deadline (RFC 3339, UTC), fixed at creation

    @classmethod
    def from_dict(cls, d: dict) -> "ResourceState":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def applied_spec(prior: ResourceState | None, pending: dict | None, live_id: str | None = None) -> dict | None:
    """The spec we last applied to the object `live_id`: the state's record, else the spec
    of a create an interrupted apply journaled (it may have made the object). An
    interrupted replace has both: the journaled spec is the one of its new object (found
    by natural key, another id than the record's), the record's the one of the old."""
    journaled = pending.get("spec") if pending else None
    if prior is not None and (journaled is None or live_id is None or live_id == prior.id):
        return prior.last_applied
    return journaled


@dataclass
class StateDoc:
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    resources: dict[str, ResourceState] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = STATE_VERSION
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {value, sensitive}
    forgotten: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> {kind, id, fingerprint}
    # addresses an `expires: {action: destroy}` removed: not made again until `reconciler extend`
    expired: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> {at, destroyed_at}
    # guardrail events, newest last: policy overrides, extends, expiries ({at, who, event, ...})
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"version": self.version, "lineage": self.lineage, "serial": self.serial,
                "resources": {a: asdict(r) for a, r in sorted(self.resources.items())},
                "pending": dict(sorted(self.pending.items())),
                **({"outputs": dict(sorted(self.outputs.items()))} if self.outputs else {}),
                **({"forgotten": dict(sorted(self.forgotten.items()))} if self.forgotten else {}),
                **({"expired": dict(sorted(self.expired.items()))} if self.expired else {}),
                **({"events": list(self.events[-MAX_EVENTS:])} if self.events else {})}

    @classmethod
    def from_dict(cls, d: dict, where: str = "the state") -> "StateDoc":
        """A stored document, checked first (StateError naming `where` and the field)."""
        from reconciler.state.check import check
        check(d, where, STATE_VERSION)
        return cls(lineage=d.get("lineage") or str(uuid.uuid4()), serial=int(d.get("serial", 0)),
                   resources={a: ResourceState.from_dict(r) for a, r in d.get("resources", {}).items()},
                   pending=dict(d.get("pending", {})), version=int(d.get("version", STATE_VERSION)),
                outputs=dict(d.get("outputs") or {}), expired=dict(d.get("expired") or {}),
                events=list(d.get("events") or []), forgotten=dict(d.get("forgotten") or {}))


@dataclass
class LockInfo:
    id: str
    who: str  # user@host
    pid: int
    operation: str  # "apply", "destroy", ...
    created: float

    @classmethod
    def new(cls, operation: str) -> "LockInfo":
        try:
            user = getpass.getuser()
        except Exception:  # no login name in some containers
            user = str(os.getuid())
        return cls(id=str(uuid.uuid4()), who=f"{user}@{socket.gethostname()}", pid=os.getpid(),
                   operation=operation, created=time.time())

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))
        return (f"lock {self.id} held by {self.who} (pid {self.pid}, `{self.operation}`, "
                f"since {started})")


class StateStore(Protocol):
    location: str  # for messages: a path or a redacted URL

    def read(self) -> StateDoc:
        """The current document; a new empty one if there is none yet."""

    def write(self, doc: StateDoc) -> None:
        """Compare-and-swap on doc.serial, then doc.serial += 1. StaleStateError if moved."""

    def lock(self, operation: str, timeout: float = 0.0) -> ContextManager[LockInfo]:
        """Exclusive lock for a writing command; LockError naming the holder if taken
        (after waiting up to `timeout` seconds)."""

    def unlock(self, lock_id: str) -> None:
        """Force-release a lock left behind (`reconciler state unlock LOCK_ID`)."""

    def replace_all(self, doc: StateDoc) -> None:
        """Write a document as it is, lineage and serial kept (`reconciler state migrate`)."""
