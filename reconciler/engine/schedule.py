"""Power schedules: `schedule: [{power: stopped, cron: "0 20 * * 1-5", duration: 12h,
timezone: Europe/Helsinki}]` on a VM. Each window starts at a cron time (in its zone) and
lasts its duration; inside a window the VM's desired power is the window's, outside every
window the spec's. The first window listed wins where two overlap.

    ──running──┤ 20:00 stopped (12h) ├──running──┤ next day 20:00 ...
               window start          window end = next change

Cron is read by cronsim (Healthchecks.io's parser: no dependencies, time-zone aware and
DST-correct with zoneinfo datetimes). cronsim also takes a sixth, seconds field first;
a schedule refuses it, since a Quartz-style expression would be read another way.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.config import durations

WEEK = timedelta(days=7)
MAX_STEPS = 20000  # cron times looked at per window per question: "* * * * *" over 12 h is 720


@dataclass(frozen=True)
class Window:
    power: str
    cron: str
    duration: timedelta
    zone: ZoneInfo

    def describe(self) -> str:
        return f"{self.power} from cron '{self.cron}' for {durations.say(self.duration)} ({self.zone.key})"

    def starts(self, after: datetime) -> Iterator[datetime]:
        from cronsim import CronSim

        it = CronSim(self.cron, after.astimezone(self.zone))
        for _ in range(MAX_STEPS):
            try:
                yield next(it)
            except StopIteration:
                return

    def covering(self, now: datetime) -> datetime | None:
        """The start of this window's occurrence that covers `now`, or None."""
        found = None
        for start in self.starts(now - self.duration):
            if start > now:
                break
            if start + self.duration > now:
                found = start  # the latest start that still covers now
        return found


def problem(entry: Any) -> tuple[str, str] | None:
    """(field, why) for a window that cannot be read; the schema checked the shape."""
    from cronsim import CronSim, CronSimError

    try:
        ZoneInfo(entry.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return "timezone", f"{entry.get('timezone')!r} is not an IANA time zone (e.g. Europe/Helsinki)"
    fields = len(entry["cron"].split())
    if fields == 6:  # cronsim would read the first as seconds, where Quartz and Spring users differ
        return "cron", (f"{entry['cron']!r} has 6 fields; a schedule's cron has 5 (minute hour day month "
                        "weekday), no seconds")
    try:
        CronSim(entry["cron"], datetime(2026, 1, 1))
    except CronSimError as e:
        return "cron", f"{entry['cron']!r} is not a cron expression (minute hour day month weekday): {e}"
    why = durations.problem(entry["duration"], "12h")
    if why:
        return "duration", why
    length = durations.parse(entry["duration"])
    if length is None or length <= timedelta(0):
        return "duration", "expected a duration like 12h"
    return None


def windows(schedule: list[dict]) -> list[Window]:
    return [Window(w["power"], w["cron"], durations.parse(w["duration"]) or timedelta(0),
                   ZoneInfo(w.get("timezone", "UTC"))) for w in schedule]


@dataclass(frozen=True)
class PowerNow:
    power: str  # desired now: the window's, or the spec's outside every window
    window: Window | None  # the window in force
    next_change: datetime | None  # when the desired power next differs (within a week)
    next_power: str | None


def power_at(schedule: list[Window], now: datetime, default: str) -> PowerNow:
    window = next((w for w in schedule if w.covering(now) is not None), None)
    power = window.power if window else default
    change, to = None, None
    # the next moment the answer differs: a window's end, or another window's start
    candidates: list[datetime] = []
    for w in schedule:
        start = w.covering(now)
        if start is not None:
            candidates.append(start + w.duration)
        candidates.extend(s for s in _first(w.starts(now)))
    for moment in sorted(c for c in candidates if now < c <= now + WEEK):
        later = next((w.power for w in schedule if w.covering(moment) is not None), default)
        if later != power:
            change, to = moment, later
            break
    return PowerNow(power, window, change, to)


def _first(it: Iterator[datetime]) -> list[datetime]:
    return [s for s, _ in zip(it, range(1))]


def running_share(schedule: list[Window], now: datetime, default: str) -> float:
    """The share of the next week the VM is desired running (costs count only those hours)."""
    end = now + WEEK
    spans: list[tuple[datetime, datetime, str]] = []
    for w in schedule:
        for start in w.starts(now - w.duration):
            if start >= end:
                break
            spans.append((max(start, now), min(start + w.duration, end), w.power))
    # walk the boundaries: between two of them the desired power is constant
    marks = sorted({now, end, *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    running = timedelta(0)
    for a, b in zip(marks, marks[1:]):
        middle = a + (b - a) / 2
        # spans are listed window by window: the first window listed wins
        power = next((p for s, e, p in spans if s <= middle < e), default)
        if power == "running":
            running += b - a
    return running / WEEK

