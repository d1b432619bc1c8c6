"""What the kinds of every provider share: a problem pinned to a spec field, waiting for
a remote object to settle, finding the object a journaled create made, and reading a
listing's envelope strictly."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from reconciler.config.model import Resource
from reconciler.errors import ApiError, Problem
from reconciler.providers import budget

# seconds between status checks: start fast, back off to one a second, so that the time an
# apply reports for a wait is within a second of the truth
POLL_FIRST, POLL_MAX = 0.2, 1.0


def problem(resource: Resource, field: str, message: str) -> Problem:
    """A Problem at `spec.<field>` of a resource, with the field's file:line:col."""
    pos = resource.where(f"spec.{field}")
    return Problem(pos.file, pos.line, pos.column, f"{resource.address}.spec.{field}", message)


def wait_for(check: Callable[[], tuple[bool, str]], what: str, timeout: float,
             progress: Callable[[str], None], api: str) -> None:
    """Poll `check` (-> done, status) with backoff until done; an ApiError after `timeout`
    that says the next apply picks the object up (its create is journaled). Every poll's
    status goes to `progress`: the display decides how often to show it, and times it."""
    started, delay = time.monotonic(), POLL_FIRST
    while True:
        with budget.poll_recovered():  # scattered blips over a long wait are not one failing call
            done, status = check()
        if done:
            return
        waited = time.monotonic() - started
        if waited > timeout:
            raise ApiError(f"{what} is still {status} after {waited:.0f}s (timeout {timeout:.0f}s); "
                           "the next apply picks it up", api=api)
        progress(f"{what}: {status}")
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


def newest_unclaimed(items: Iterable[Any], matches: Callable[[Any], bool], id_of: Callable[[Any], str],
                     created_of: Callable[[Any], Any], claimed: set[str]) -> Any | None:
    """The object a journaled create may have made before a crash: the newest one with the
    natural key (`matches`) that no other address owns. It is then claimed, so two pending
    creates of the same name never take the same object."""
    found = [i for i in items if matches(i) and id_of(i) not in claimed]
    if not found:
        return None
    item = max(found, key=created_of)
    claimed.add(id_of(item))
    return item


def listed(body: Any, key: str, api: str, endpoint: str) -> list:
    """The list under `key` of a listing's answer (or a bare list). Anything else (an
    empty body, an HTML page, an object without `key`) is an ApiError: a listing read as
    empty would make every object look deleted, and the plan would create them again."""
    items = body.get(key, _MISSING) if isinstance(body, dict) else body
    if items is None:
        return []  # the key, present and null: nothing listed
    if not isinstance(items, list):
        got = (f"an object without {key!r} (keys: {', '.join(sorted(map(str, body))[:6]) or 'none'})"
               if items is _MISSING else "an empty answer" if body is None else type(body).__name__)
        raise ApiError(f"unreadable listing: expected a list under {key!r}, got {got}", api=api, endpoint=endpoint)
    return items


_MISSING = object()
