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
                         └──────────▶ create again

Every attempt here spends the same budget as the HTTP layer's own retries inside it
(providers/budget.py): at most 8 attempts per call in all and one deadline, so the two
layers never multiply. A wait the server asks for (Retry-After) that would end past the
deadline is not waited: the step fails with the error at once.
"""
from __future__ import annotations

import logging
import random
from typing import Any, Callable

from reconciler.errors import ApiError, AuthError, CreatedIncomplete, TransportError
from reconciler.providers import budget
from reconciler.providers.contract import Kind, KindContext, Live
from reconciler.providers.http import describe_failure, report_retry

log = logging.getLogger("reconciler.engine.recovery")
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


def _delay(attempt: int, error: BaseException) -> float:
    """Backoff with jitter, or longer when the server asked for a longer wait."""
    cause = error.cause if isinstance(error, CreatedIncomplete) else error
    asked = cause.retry_after if isinstance(cause, ApiError) else None
    return max(asked or 0.0, random.uniform(BACKOFF, min(MAX_BACKOFF, BACKOFF * 2 ** attempt)))


def _again(spend: budget.Budget, attempt: int, error: BaseException) -> bool:
    """Spend one retry of the call's budget on `error` and wait, or say no (no wait)."""
    if not transient(error):
        return False
    delay = _delay(attempt, error)
    if not spend.allows(delay):
        return False
    spend.retried()
    cause = error.cause if isinstance(error, CreatedIncomplete) else error
    report_retry(getattr(cause, "api", "") or "step", getattr(cause, "endpoint", "") or "call",
                 str(cause) if isinstance(cause, ApiError) else describe_failure(cause), spend.retries + 1, delay)
    spend.wait(delay)
    return True


def retry(call: Callable[[], Any], sleep: Callable[[float], None] | None = None) -> Any:
    """An update or delete: again on a transient failure, within the call's budget."""
    with budget.call(wait=sleep) as spend:
        attempt = 0
        while True:
            try:
                return call()
            except Exception as e:  # noqa: BLE001 - classified below
                if not _again(spend, attempt, e):
                    raise
            attempt += 1


def create(kind: Kind, ctx: KindContext, spec: dict, lookup: Callable[[], Any],
           sleep: Callable[[float], None] | None = None, first_error: BaseException | None = None) -> Live:
    """kind.create, resolving in-doubt failures by lookup before any second create.
    `first_error`: the create already failed once (a batch create_many)."""
    made = None  # a Live known to exist (from CreatedIncomplete, or found by lookup)
    error = first_error
    with budget.call(wait=sleep) as spend:
        attempt = 0
        while True:
            try:
                if error is None:
                    return kind.create(ctx, spec)
                if not _again(spend, attempt, error):
                    break
                attempt += 1
                if made is None:
                    made = lookup()  # if this fails, we cannot know: no create follows
                return finish(kind, ctx, spec, made) if made is not None else kind.create(ctx, spec)
            except CreatedIncomplete as e:
                made, error = e.live, e.cause
            except Exception as e:  # noqa: BLE001 - classified on the next turn
                error = e
    assert error is not None  # the loop ends on a failure
    if made is not None:
        raise CreatedIncomplete(made, error)  # recorded in the state: the next run finishes it
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
