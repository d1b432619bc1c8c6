"""The desired state at a moment: what the manifests say, with expiry and power
schedules applied for "now" (an injected clock), before the planner compares it with the
live objects. Watch re-plans every interval, so the boundaries are carried out as they pass.

A scheduled stop is never drift: the stop is applied like any other change, so the last
applied power is the scheduled one and the live VM matches it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Callable, Mapping

from reconciler.config import durations
from reconciler.config.model import Resource
from reconciler.engine import expiry
from reconciler.engine import schedule as sched
from reconciler.engine.clock import LAST_YEAR, Clock, parse_stamp, stamp, system_now
from reconciler.engine.planner import PlanResult
from reconciler.errors import Problem
from reconciler.plan.model import HOURS_PER_MONTH, TimeNote
from reconciler.providers.contract import Kind, KindContext, Priced
from reconciler.state.base import StateDoc

NOTICES = ((7200, "2h"), (1800, "30m"))  # seconds before a deadline that watch sends a notice


@dataclass
class Timeline:
    resources: list[Resource]  # desired now
    notes: list[TimeNote] = field(default_factory=list)
    expired: dict[str, str] = field(default_factory=dict)  # address -> why it is removed now
    deadlines: dict[str, datetime] = field(default_factory=dict)
    running_share: dict[str, float] = field(default_factory=dict)  # scheduled VMs
    clock: Clock = system_now  # the apply's "now" for deadlines and tombstones (the workspace's clock)


def problems(resources: list[Resource], kinds: Mapping[str, Kind]) -> list[Problem]:
    """expires/schedule that cannot be carried out: one line each, before any API call."""
    out: list[Problem] = []

    def add(r: Resource, path: str, message: str) -> None:
        pos = r.where(path)
        out.append(Problem(pos.file, pos.line, pos.column, f"{r.address}.{path}", message))

    for r in resources:
        if r.expires is None and r.schedule is None:
            continue  # the common case, 100,000 times in a large manifest
        powered = _has_power(kinds.get(r.kind))
        if r.expires is not None:
            if "after" in r.expires and "at" in r.expires:
                add(r, "expires", "give after or at, not both")
            elif "after" not in r.expires and "at" not in r.expires:
                add(r, "expires", "give after (8h) or at (2026-12-10T18:00:00Z)")
            elif "after" in r.expires and (why := durations.problem(str(r.expires["after"]), "8h")):
                add(r, "expires.after", why)
            elif "at" in r.expires and _far(str(r.expires["at"])):
                add(r, "expires.at", f"{r.expires['at']} is after the year {LAST_YEAR}: give a nearer time")
            elif "at" in r.expires and parse_stamp(str(r.expires["at"])) is None:
                add(r, "expires.at", "expected an RFC 3339 time with its zone, like 2026-12-10T18:00:00Z")
            if expiry.action(r) == "stop" and not powered:
                add(r, "expires.action", f"a {r.kind} has no power to stop; use destroy")
        if r.schedule is not None:
            if not powered:
                add(r, "schedule", f"a {r.kind} has no power to schedule (valdi.vm has)")
                continue
            for i, entry in enumerate(r.schedule):
                found = sched.problem(entry)
                if found:
                    add(r, f"schedule[{i}].{found[0]}", found[1])
    return out


def _far(text: str) -> bool:
    """A time after LAST_YEAR (9999-12-31T23:59:59-14:00 is past the calendar's end in UTC)."""
    return text[:4].isdigit() and text[4:5] == "-" and int(text[:4]) > LAST_YEAR


def _has_power(kind: Kind | None) -> bool:
    schema = getattr(kind, "schema", None)
    if isinstance(schema, str):
        from reconciler.config.validation import load_schema

        schema = load_schema(schema)
    return isinstance(schema, dict) and "power" in (schema.get("properties") or {})


def desired_at(resources: list[Resource], state: StateDoc, now: datetime) -> Timeline:
    out = Timeline(resources=[])
    for r in resources:
        prior = state.resources.get(r.address)
        if prior is None and expiry.tombstoned(state, r.address, now):
            when = state.expired[r.address].get("destroyed_at", "")
            out.expired[r.address] = f"expired and destroyed at {when}"
            out.notes.append(TimeNote(r.address, "expired", f"expired and destroyed at {when}; not made again "
                                      f"(`reconciler extend {r.address} 8h` brings it back)"))
            continue
        spec_power = r.spec.get("power", "running") if isinstance(r.spec, dict) else "running"
        power = spec_power
        due = expiry.deadline(r, prior, now, expiry.revival_window(state, r.address) if prior is None else None)
        expired_stop = False
        if due is not None:
            out.deadlines[r.address] = due
            what = expiry.action(r)
            protected = r.lifecycle.prevent_destroy or bool(prior and prior.protected)
            if now < due:
                out.notes.append(TimeNote(r.address, "expires", f"expires in {durations.say(due - now)} "
                                          f"(at {stamp(due)}; then {what})",
                                          {"deadline": stamp(due), "action": what,
                                           "seconds_left": int((due - now).total_seconds())}))
            elif what == "destroy" and protected:
                out.notes.append(TimeNote(r.address, "expired", f"expired at {stamp(due)}; prevent_destroy keeps "
                                          "it (lift the protection or `reconciler extend`)",
                                          {"deadline": stamp(due), "action": what}))
            elif what == "destroy":
                out.expired[r.address] = f"expired at {stamp(due)} (expires: destroy)"
                out.notes.append(TimeNote(r.address, "expired", f"expired at {stamp(due)}: destroyed now",
                                          {"deadline": stamp(due), "action": what}))
                continue
            else:
                power, expired_stop = "stopped", True
                out.notes.append(TimeNote(r.address, "expired", f"expired at {stamp(due)}: stopped",
                                          {"deadline": stamp(due), "action": what}))
        if r.schedule and not expired_stop:
            windows = sched.windows(r.schedule)
            now_power = sched.power_at(windows, now, spec_power)
            power = now_power.power
            out.running_share[r.address] = sched.running_share(windows, now, spec_power)
            said = (f"schedule: {power} (window {now_power.window.describe()})" if now_power.window
                    else f"schedule: {power} (no window in force)")
            if now_power.next_change is not None:
                said += f"; next change: {now_power.next_power} at {stamp(now_power.next_change)}"
            out.notes.append(TimeNote(r.address, "schedule", said, {
                "power": power, "window": now_power.window.cron if now_power.window else None,
                "next_change": stamp(now_power.next_change) if now_power.next_change else None,
                "next_power": now_power.next_power}))
        if power != spec_power:
            r = dc_replace(r, spec={**r.spec, "power": power})
        out.resources.append(r)
    return out


def annotate(result: PlanResult, timeline: Timeline, kinds: Mapping[str, Kind],
             context: Callable[[str], KindContext]) -> None:
    """The plan says why an expired resource goes, and what a schedule saves."""
    for address, why in timeline.expired.items():
        step = result.steps.get(address)
        if step is not None and step.action.type.removes:
            step.action.reasons = [why]
    for address, share in timeline.running_share.items():
        step = result.steps.get(address)
        if step is None or step.spec is None or step.action.type.removes:
            continue
        kind = kinds[step.action.kind]
        if not isinstance(kind, Priced):
            continue
        try:
            ctx = context(step.action.kind)
            running = kind.hourly_cost(ctx, {**step.spec, "power": "running"})
            stopped = kind.hourly_cost(ctx, {**step.spec, "power": "stopped"})
        except Exception:  # noqa: BLE001 - a cost we cannot compute must not block a plan
            continue
        if running is None or stopped is None:
            continue
        hourly = running * share + stopped * (1 - share)
        monthly, saved = hourly * HOURS_PER_MONTH, (running - hourly) * HOURS_PER_MONTH
        for note in timeline.notes:
            if note.address == address and note.what == "schedule":
                note.text += f"; monthly ${monthly:,.2f} with schedule, ${saved:,.2f} saved"
                note.values.update(hourly_with_schedule=round(hourly, 4), monthly_with_schedule=round(monthly, 2),
                                   monthly_saved=round(saved, 2), running_share=round(share, 4))


def scheduled_hourly(timeline: Timeline) -> dict[str, float]:
    """address -> hourly cost averaged over the schedule (set by annotate)."""
    return {n.address: n.values["hourly_with_schedule"] for n in timeline.notes
            if n.what == "schedule" and "hourly_with_schedule" in n.values}


def due_notices(timeline: Timeline, now: datetime) -> list[tuple[str, str, datetime]]:
    """(address, threshold, deadline) for each deadline within a notice threshold."""
    out = []
    for address, due in timeline.deadlines.items():
        left = (due - now).total_seconds()
        for seconds, label in NOTICES:
            if 0 < left <= seconds:
                out.append((address, label, due))
    return out

