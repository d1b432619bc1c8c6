"""Power-schedule windows (engine/schedule.py) as a table: which power is desired at a
moment, when it next changes, and the share of a week a VM runs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reconciler.engine import schedule

NIGHTS = {"power": "stopped", "cron": "0 20 * * 1-5", "duration": "12h", "timezone": "Europe/Helsinki"}
SATURDAY_RUN = {"power": "running", "cron": "0 10 * * 6", "duration": "2h"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("windows,default,now,power,next_change", [
    ([NIGHTS], "running", utc(2026, 12, 3, 19), "stopped", utc(2026, 12, 4, 6)),  # Thu 21:00 Helsinki
    ([NIGHTS], "running", utc(2026, 12, 3, 12), "running", utc(2026, 12, 3, 18)),  # Thu 14:00: until 20:00
    ([NIGHTS], "running", utc(2026, 12, 5, 12), "running", utc(2026, 12, 7, 18)),  # Saturday: Monday night
    # the last window of the week ends Saturday 08:00 Helsinki
    ([NIGHTS], "running", utc(2026, 12, 5, 5), "stopped", utc(2026, 12, 5, 6)),
    # a VM stopped by default, running two hours on Saturdays (UTC when no timezone is given)
    ([SATURDAY_RUN], "stopped", utc(2026, 12, 5, 11), "running", utc(2026, 12, 5, 12)),
    # summer time: 20:00 in Helsinki is 17:00 UTC
    ([NIGHTS], "running", utc(2026, 7, 2, 17, 30), "stopped", utc(2026, 7, 3, 5)),
], ids=["in-window", "before-window", "weekend", "last-night", "stopped-by-default", "summer-time"])
def test_the_power_desired_at_a_moment_and_its_next_change(windows, default, now, power, next_change):
    found = schedule.power_at(schedule.windows(windows), now, default)
    assert found.power == power
    assert found.next_change == next_change and found.next_power != power


def test_the_first_window_listed_wins_where_two_overlap():
    everyday = {"power": "running", "cron": "0 19 * * *", "duration": "2h", "timezone": "Europe/Helsinki"}
    now = utc(2026, 12, 3, 18, 30)  # 20:30 in Helsinki: inside both
    assert schedule.power_at(schedule.windows([everyday, NIGHTS]), now, "running").power == "running"
    assert schedule.power_at(schedule.windows([NIGHTS, everyday]), now, "running").power == "stopped"


def test_running_share_counts_the_hours_outside_stopped_windows():
    share = schedule.running_share(schedule.windows([NIGHTS]), utc(2026, 12, 3, 12), "running")
    assert share == pytest.approx((168 - 60) / 168)
    assert schedule.running_share([], utc(2026, 12, 3, 12), "stopped") == 0


@pytest.mark.parametrize("entry,field", [
    ({**NIGHTS, "cron": "0 25 * * *"}, "cron"),
    ({**NIGHTS, "cron": "0 20 * *"}, "cron"),
    ({**NIGHTS, "timezone": "Mars/Olympus"}, "timezone"),
    ({**NIGHTS, "duration": "0h"}, "duration"),
])
def test_a_window_that_cannot_be_read_names_its_field(entry, field):
    assert schedule.problem(entry)[0] == field
