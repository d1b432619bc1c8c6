"""Finishing a step inside the run when the network or the service fails it.

A create whose answer is in doubt (a POST answered 5xx, or cut off after it was sent)
may or may not have made its object. Blindly sending it again can make a duplicate;
giving up ends the run. So: wait (backoff with jitter), look the object up by its
natural key (the kind's observe with `lookup`, as after a crash), finish what was found,
and create only if nothing was. Updates and deletes set an end state, so a transient
failure of theirs is simply tried again.

    create ──ok──────────────────────────────────────▶ live
      │ transient / in doubt
      ▼
    backoff ─▶ lookup by natural key ─ found ─▶ diff ─▶ update if needed ─▶ live
                         │ not found
                         └──────────▶ create again (at most ATTEMPTS in all)
"""
from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable

from reconciler.errors import ApiError, AuthError, CreatedIncomplete, TransportError
from reconciler.providers.contract import Kind, KindContext, Live

log = logging.getLogger("reconciler.engine.recovery")
ATTEMPTS = 6  # calls of one step in one run, the first included (0.33**6: 1 in 800 at 50% faults)
BACKOFF, MAX_BACKOFF = 0.5, 8.0


def transient(error: BaseException) -> bool:
    """A failure that may go away by itself: a lost connection, 5xx, or 429 after every retry.
    4xx answers (bad input, conflicts, auth) are decisions, not accidents."""
    if isinstance(error, CreatedIncomplete):
        return transient(error.cause)
    if isinstance(error, TransportError):
        return True
    if isinstance(error, AuthError) or not isinstance(error, ApiError):
        return False
    if error.in_doubt:
        return True
    return error.status is not None and (error.status >= 500 or error.status == 429)  # a timeout is no accident


def _pause(attempt: int, sleep: Callable[[float], None]) -> None:
    sleep(random.uniform(BACKOFF, min(MAX_BACKOFF, BACKOFF * 2 ** attempt)))


def retry(call: Callable[[], Any], sleep: Callable[[float], None] = time.sleep) -> Any:
    """An update or delete: again on a transient failure, up to ATTEMPTS calls."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - classified below
            if not transient(e) or attempt == ATTEMPTS - 1:
                raise
        _pause(attempt, sleep)


def create(kind: Kind, ctx: KindContext, spec: dict, lookup: Callable[[], Any],
           sleep: Callable[[float], None] = time.sleep, first_error: BaseException | None = None) -> Live:
    """kind.create, resolving in-doubt failures by lookup before any second create.
    `first_error`: the create already failed once (a batch create_many)."""
    made = None  # a Live known to exist (from CreatedIncomplete, or found by lookup)
    error = first_error
    for attempt in range(ATTEMPTS):
        try:
            if error is None:
                return kind.create(ctx, spec)
            if not transient(error):
                break
            log.debug("create failed (%s: %s); attempt %d of %d", error.__class__.__name__, error, attempt + 1,
                      ATTEMPTS)
            _pause(attempt, sleep)
            if made is None:
                made = lookup()  # if this fails, we cannot know: no create follows
            return finish(kind, ctx, spec, made) if made is not None else kind.create(ctx, spec)
        except CreatedIncomplete as e:
            made, error = e.live, e.cause
        except Exception as e:  # noqa: BLE001 - classified on the next turn
            error = e
    if made is not None:
        assert error is not None  # the loop ends on a failure
        raise CreatedIncomplete(made, error)  # recorded in the state: the next run finishes it
    assert error is not None
    raise error


def finish(kind: Kind, ctx: KindContext, spec: dict, live: Live) -> Live:
    """An object that exists (found, or made by a create that failed later): bring it to
    the spec the way a take-over is, with no replacement."""
    diff = kind.diff(spec, live, None)
    if not diff.changed or diff.replace:
        return live
    try:
        return kind.update(ctx, live, spec, diff)
    except Exception as e:  # noqa: BLE001 - keep what exists in the state
        raise CreatedIncomplete(live, e) from None
