"""`expires: {after: 8h | at: TIME, action: destroy|stop}`: deadlines and what they leave.

    created ──(after)──▶ deadline ──▶ destroy: the resource leaves the desired state
                                      (its deletion policy and prevent_destroy hold), and
                                      a tombstone in the state keeps it from being made again
                                  └─▶ stop: the VM's desired power is stopped

The deadline is fixed in the state when the object is created (ResourceState.expires_at)
and moved only by `reconciler extend ADDR DURATION`, which the state's events record.
"""
from __future__ import annotations

from dataclasses import replace as dc_replace
from datetime import datetime, timedelta
from typing import Any

from reconciler.config import durations
from reconciler.config.model import Resource
from reconciler.engine.clock import parse_stamp, stamp
from reconciler.errors import StateError
from reconciler.state.base import LockInfo, ResourceState, StateDoc


def action(resource: Resource) -> str:
    return str((resource.expires or {}).get("action", "destroy"))


def planned_deadline(resource: Resource, now: datetime) -> datetime | None:
    """The deadline the manifest gives an object made now."""
    spec = resource.expires or {}
    if "at" in spec:
        return parse_stamp(str(spec["at"]))
    after = durations.parse(str(spec.get("after", "")))
    return now + after if after is not None else None


def deadline(resource: Resource, prior: ResourceState | None, now: datetime) -> datetime | None:
    """The recorded deadline of an object that exists, else the one it would get."""
    if resource.expires is None:
        return None
    recorded = parse_stamp(prior.expires_at) if prior is not None and prior.expires_at else None
    return recorded or planned_deadline(resource, now)


def who() -> str:
    return LockInfo.new("guardrail").who


def add_event(state: StateDoc, now: datetime, event: str, **fields: Any) -> dict:
    entry = {"at": stamp(now), "who": who(), "event": event, **fields}
    state.events.append(entry)
    return entry


def record(resources: list[Resource], state: StateDoc, now: datetime, expired: set[str]) -> bool:
    """After an apply: deadlines for objects just made, tombstones for objects an expiry
    removed. True when the state changed (the caller writes it)."""
    changed = False
    for r in resources:
        entry = state.resources.get(r.address)
        if r.expires is not None and entry is not None and not entry.expires_at:
            moment = planned_deadline(r, now)
            if moment is not None:  # a new entry, never an edit in place: the file store reuses unchanged ones
                state.resources[r.address] = dc_replace(entry, expires_at=stamp(moment))
                changed = True
    for address in sorted(expired):
        if address not in state.resources and address not in state.expired:
            state.expired[address] = {"destroyed_at": stamp(now)}
            add_event(state, now, "expired", address=address, action="destroy")
            changed = True
    return changed


def extend(state: StateDoc, address: str, by: timedelta, now: datetime) -> str:
    """Move a deadline: from the later of the deadline and now. A resource an expiry
    destroyed is made again by the next apply, with a fresh deadline. Returns what changed."""
    if address in state.expired:
        del state.expired[address]
        add_event(state, now, "extend", address=address, by=durations.say(by), revived=True)
        return (f"{address} expired and was destroyed; it will be made again by the next apply "
                f"(with the deadline its expires: gives)")
    entry = state.resources.get(address)
    if entry is None:
        raise StateError(f"{address} is not in the state")
    old = parse_stamp(entry.expires_at) if entry.expires_at else None
    if old is None:
        raise StateError(f"{address} has no recorded deadline: give it `expires:` in the manifests and apply")
    try:
        new = max(old, now) + by
    except OverflowError:
        raise StateError(f"{address}: a deadline {durations.say(by)} after {stamp(max(old, now))} is past the "
                         "end of the calendar") from None
    state.resources[address] = dc_replace(entry, expires_at=stamp(new))
    add_event(state, now, "extend", address=address, before=stamp(old), after=stamp(new), by=durations.say(by))
    return f"{address} now expires at {stamp(new)} (in {durations.say(new - now)}; was {stamp(old)})"
