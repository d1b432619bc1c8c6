"""One retry budget per call, shared by the HTTP layer and the engine's recovery.

Two layers that each retry multiply: 8 HTTP attempts inside 6 step attempts sent 48
requests and slept 42 minutes against one 503 with `Retry-After: 60`. So a call (an
engine step's update, delete or create, or one HTTP request made outside any step)
opens a Budget, and every attempt inside it, at either layer, spends from the same one:

* at most MAX_ATTEMPTS attempts in all;
* a deadline (DEFAULT_DEADLINE seconds after the call's first failure, so a long
  poll that succeeds spends none of it; `--call-deadline` or RECONCILER_CALL_DEADLINE
  change it): a wait that would end past it is not waited, the call gives up with the
  last error at once (a Retry-After longer than what is left);
* a host that refuses connections is given up on CONNECT_GIVE_UP seconds after its
  first refusal, whatever budget is left.

A wait's status poll that recovered (a 429 or a 503, then an answer) gives back what it
spent (`poll_recovered`): a ten-minute wait polls a hundred times, and scattered blips
across it are no failing operation; a poll that gives up still spends, and ends the wait.

Budgets nest by context (contextvars): a request inside an engine retry spends the
engine's budget instead of opening its own. The applier's worker threads each run their
step in their own context, so steps never share a budget.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

MAX_ATTEMPTS = 8
DEFAULT_DEADLINE = 60.0
MAX_DEADLINE = 86400.0  # --call-deadline's limit too: inf or 1e400 would make a wait overflow the clock
CONNECT_GIVE_UP = 10.0
DEADLINE_ENV = "RECONCILER_CALL_DEADLINE"

# the process's clock and sleep; tests put fakes in their place (no wall-clock waits)
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep

_current: contextvars.ContextVar["Budget | None"] = contextvars.ContextVar("retry_budget", default=None)
_deadline_flag: list[float] = []  # --call-deadline, set by the command line for this process


def set_deadline(seconds: float | None) -> None:
    """The per-call deadline the command line asked for (None: back to env / default)."""
    _deadline_flag[:] = [] if seconds is None else [float(seconds)]


def deadline_seconds(env: Mapping[str, str] | None = None) -> float:
    """--call-deadline > RECONCILER_CALL_DEADLINE > 60 s."""
    if _deadline_flag:
        return _deadline_flag[0]
    raw = (os.environ if env is None else env).get(DEADLINE_ENV)
    if raw:
        try:
            value = float(raw.rstrip("s"))
            if 0 < value <= MAX_DEADLINE:  # nan and inf are neither
                return value
        except ValueError:
            pass
    return DEFAULT_DEADLINE


@dataclass
class Budget:
    seconds: float  # how long the call may go on retrying, from its first failure
    now: Callable[[], float]
    wait: Callable[[float], None]
    attempts: int = MAX_ATTEMPTS
    retries: int = 0  # attempts after the first, at either layer
    first_failure: float | None = None  # a VM's 10-minute provisioning poll is no failure

    def allows(self, delay: float) -> bool:
        """May one more attempt follow after waiting `delay` seconds?"""
        now = self.now()
        if self.first_failure is None:
            self.first_failure = now
        return self.retries + 1 < self.attempts and now + delay <= self.first_failure + self.seconds

    def retried(self) -> None:
        self.retries += 1


@contextlib.contextmanager
def poll_recovered() -> Iterator[None]:
    """Around one status poll of a wait: if it returns, the retries it took (and the
    deadline they started) are given back to the call's budget; if it raises, they stay."""
    outer = _current.get()
    if outer is None:
        yield
        return
    retries, first_failure = outer.retries, outer.first_failure
    yield
    outer.retries, outer.first_failure = retries, first_failure


@contextlib.contextmanager
def call(attempts: int = MAX_ATTEMPTS, deadline: float | None = None,
         now: Callable[[], float] | None = None, wait: Callable[[float], None] | None = None) -> Iterator[Budget]:
    """The budget of the call in progress, or a new one for this call."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(seconds=deadline if deadline is not None else deadline_seconds(),
                    now=now or clock, wait=wait or sleep, attempts=attempts)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
