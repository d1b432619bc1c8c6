"""The time a plan is made for. Expiry and power schedules make the desired state depend
on "now", so the engine never reads the wall clock itself: a Workspace carries a clock
(tests inject one and move it)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]  # an aware datetime


def system_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: how the state records a moment."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    try:
        moment.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        return None
    return moment


LAST_YEAR = 8999  # of a deadline: extend (up to 100 years at a time) stays inside the calendar
