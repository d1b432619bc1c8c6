"""Per-resource backoff for a watch that applies: a resource that keeps failing is retried
after 1 s, 2 s, 4 s ... up to 60 s (Crossplane's figures), then once every interval, while
the others go on at their own pace. Pure: the clock is an argument."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

FIRST, CAP = 1.0, 60.0


def delay_after(failures: int, interval: float) -> float:
    """Seconds to wait after the n-th failure in a row: 1, 2, 4, ..., 32, 60, then the interval."""
    doubled = FIRST * 2 ** (failures - 1)
    if doubled < CAP:
        return doubled
    if FIRST * 2 ** (failures - 2) < CAP:
        return CAP  # the first time the doubling reaches the cap
    return interval


@dataclass
class Failing:
    count: int
    error: str
    retry_at: float  # on the backoff's clock


class Backoff:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.failing: dict[str, Failing] = {}

    def failed(self, address: str, error: str) -> Failing:
        count = self.failing[address].count + 1 if address in self.failing else 1
        entry = Failing(count, error, self.clock() + delay_after(count, self.interval))
        self.failing[address] = entry
        return entry

    def succeeded(self, address: str) -> bool:
        """Forget a failure streak; True if there was one."""
        return self.failing.pop(address, None) is not None

    def keep_only(self, addresses: set[str]) -> None:
        """A resource with nothing left to apply (its manifest was fixed) stops failing."""
        for address in [a for a in self.failing if a not in addresses]:
            del self.failing[address]

    def waiting(self) -> dict[str, float]:
        """Addresses not to try yet -> seconds left."""
        now = self.clock()
        return {a: f.retry_at - now for a, f in self.failing.items() if f.retry_at > now}

    def next_retry(self) -> float | None:
        """When the earliest waiting resource is due, on the clock; None if none waits."""
        now = self.clock()
        due = [f.retry_at for f in self.failing.values() if f.retry_at > now]
        return min(due) if due else None
