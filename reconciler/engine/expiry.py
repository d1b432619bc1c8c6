"""`expires: {after: 8h | at: TIME, action: destroy|stop}`: deadlines and what they leave.

    created ──(after)──▶ deadline ──▶ destroy: the resource leaves the desired state
                                      (its deletion policy and prevent_destroy hold), and
                                      a tombstone in the state keeps it from being made again
                                  └─▶ stop: the VM's desired power is stopped

The deadline is fixed in the state when the object is created (ResourceState.expires_at),
in the same state write as the create, and moved only by `reconciler extend ADDR DURATION`,
which the state's events record. The tombstone (state.expired[ADDR]) is written with the
teardown. `extend` of a tombstone opens a window (its `revived_until`): an apply before
then makes the object again, its deadline at least the window's end, so a fixed `at:`
already passed does not destroy it at once.
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


def deadline(resource: Resource, prior: ResourceState | None, now: datetime,
             window: datetime | None = None) -> datetime | None:
    """The recorded deadline of an object that exists, else the one it would get (at
    least the end of the window an `extend` of its tombstone gave)."""
    if resource.expires is None:
        return None
    recorded = parse_stamp(prior.expires_at) if prior is not None and prior.expires_at else None
    if recorded is not None:
        return recorded
    planned = planned_deadline(resource, now)
    return max(planned, window) if planned is not None and window is not None else planned or window


def revival_window(state: StateDoc, address: str) -> datetime | None:
    """The end of the time `extend` gave a destroyed expired object to be made again."""
    return parse_stamp(str((state.expired.get(address) or {}).get("revived_until", "")))


def tombstoned(state: StateDoc, address: str, now: datetime) -> bool:
    """An expiry destroyed it and no extension is open: it is not made again."""
    if address not in state.expired:
        return False
    until = revival_window(state, address)
    return until is None or now >= until


def who() -> str:
    return LockInfo.new("guardrail").who


def add_event(state: StateDoc, now: datetime, event: str, **fields: Any) -> dict:
    entry = {"at": stamp(now), "who": who(), "event": event, **fields}
    state.events.append(entry)
    return entry


def new_deadline(resource: Resource | None, now: datetime, window: datetime | None = None) -> str | None:
    """The deadline recorded for an object made (or made anew by a replace) now."""
    if resource is None or resource.expires is None:
        return None
    moment = deadline(resource, None, now, window)
    return stamp(moment) if moment is not None else None


def made(state: StateDoc, resource: Resource | None, address: str, now: datetime) -> str | None:
    """An object is recorded at `address` now: its tombstone (an extension being used)
    goes, and the deadline a new object gets is returned."""
    window = None
    if address in state.expired:
        window = revival_window(state, address)
        del state.expired[address]
    return new_deadline(resource, now, window)


def tombstone(state: StateDoc, address: str, now: datetime) -> bool:
    """Mark an address an expiry removed, so it is not made again: True if it was new."""
    if address in state.resources or address in state.expired:
        return False
    state.expired[address] = {"destroyed_at": stamp(now)}
    add_event(state, now, "expired", address=address, action="destroy")
    return True


def record(resources: list[Resource], state: StateDoc, now: datetime, expired: set[str]) -> bool:
    """After an apply: what the apply's own writes did not record yet (the applier writes
    deadlines and tombstones with each step, so a crash between two writes loses neither).
    True when the state changed (the caller writes it)."""
    changed = False
    for r in resources:
        entry = state.resources.get(r.address)
        if r.expires is not None and entry is not None and not entry.expires_at:
            moment = made(state, r, r.address, now)
            if moment is not None:  # a new entry, never an edit in place: the file store reuses unchanged ones
                state.resources[r.address] = dc_replace(entry, expires_at=moment)
                changed = True
    for address in sorted(expired):
        changed |= tombstone(state, address, now)
    return changed


def extend(state: StateDoc, address: str, by: timedelta, now: datetime) -> str:
    """Move a deadline: from the later of the deadline and now. A resource an expiry
    destroyed may be made again by an apply within `by`, its deadline then at least the
    end of that window (a fixed `at:` that has passed would destroy it at once).
    Returns what changed."""
    if address in state.expired and address not in state.resources:
        until = now + by
        state.expired[address] = {**state.expired[address], "revived_until": stamp(until)}
        add_event(state, now, "extend", address=address, by=durations.say(by), revived=True,
                  until=stamp(until))
        return (f"{address} expired and was destroyed; an apply before {stamp(until)} makes it again, "
                f"with the deadline its expires: gives or {stamp(until)}, whichever is later")
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
