"""The one HTTP layer all providers use: timeouts, retries, Retry-After, typed errors,
and secret redaction in logs and messages.

Retry rules:
* 429, 500, 502, 503, 504 and connection failures are retried with exponential backoff and
  full jitter, honouring Retry-After, within the call's budget (providers/budget.py: 8
  attempts in all, shared with the engine's recovery, and a deadline, 60 s by default; a
  wait past the deadline is not waited). A host that refuses connections is given up on
  10 s after its first refusal.
* Each retry is one line to the retry hooks (the CLI's progress line on a terminal) and
  one debug log line, both naming the cause.
* A request that is not idempotent (a POST that creates something) is retried only when
  we know the server did not act on it: 429, or a connection that was never made. A 5xx
  or a dropped connection after sending leaves it *in doubt*: we raise TransportError
  with `in_doubt=True` (ApiError for a 5xx) and the caller looks the object up by its
  natural key. GET, HEAD, OPTIONS, PUT, DELETE and PATCH count as idempotent: sending one
  twice leaves the same result (they are not all "safe": PUT, DELETE and PATCH write).
"""
from __future__ import annotations

import json as jsonlib
import logging
import random
import re
import sys
import threading
from typing import Any, Callable

# httpx's package imports its own command-line client (httpx._main: rich.console,
# rich.progress, pygments; some 25 ms of a 0.25 s start-up) whenever click and rich are
# installed. We never call it: a None entry makes that import fail into httpx's stub,
# and is removed again so that whoever wants httpx._main later still gets it.
if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]
import httpx  # noqa: E402 (the same module; named here for readers and type checkers)

from reconciler.config import walk
from reconciler.providers import budget
from reconciler.config.sensitivity import SECRET_PATTERN, register, scrub, secret_key
from reconciler.errors import (
    ApiError,
    AuthError,
    Conflict,
    NotFound,
    RateLimited,
    TransportError,
)

log = logging.getLogger("reconciler.providers.http")

SECRET_KEYS = SECRET_PATTERN  # one notion of sensitive: reconciler/config/sensitivity.py
_QUERY_SECRET = re.compile(r"((?:AWSAccessKeyId|Signature|X-Amz-[A-Za-z]+|token)=)[^&\s]+", re.I)

RETRY_STATUS = {429, 500, 502, 503, 504}
IDEMPOTENT_METHODS = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}  # our APIs' PATCHes set fields

# Observers of every request sent, auth and retries included: hook(api, request). The
# watch counts requests per API with one and, while it stops, refuses new ones by raising.
_request_hooks: list[Callable[[str, httpx.Request], None]] = []


def add_request_hook(hook: Callable[[str, httpx.Request], None]) -> Callable[[], None]:
    """Register `hook`; returns the function that removes it."""
    _request_hooks.append(hook)
    return lambda: _request_hooks.remove(hook) if hook in _request_hooks else None


# Told of every retry before its wait: hook(api, endpoint, cause, attempt, delay).
RetryHook = Callable[[str, str, str, int, float], None]
_retry_hooks: list[RetryHook] = []


def add_retry_hook(hook: RetryHook) -> Callable[[], None]:
    """Register `hook`; returns the function that removes it."""
    _retry_hooks.append(hook)
    return lambda: _retry_hooks.remove(hook) if hook in _retry_hooks else None


def retry_hooks() -> list[RetryHook]:
    return list(_retry_hooks)


def report_retry(api: str, endpoint: str, cause: str, attempt: int, delay: float) -> None:
    """One debug line with the cause, and the retry hooks told (a terminal's progress line).
    The cause may be any exception's text (a kind's, quoting a value): scrubbed here, once."""
    cause = scrub(cause)
    log.debug("%s %s: %s; attempt %d in %.1fs", api, endpoint, cause, attempt, delay)
    for hook in list(_retry_hooks):
        hook(api, endpoint, cause, attempt, delay)


def register_secret(value: Any) -> None:
    """A value (a sensitive variable's) that redact() removes wherever it appears."""
    register(value, min_length=4)


def _register_sent(body: Any) -> None:
    """A value sent under a secret's key (a VM's details.password) is registered, so an
    error answer that echoes it (a validation message quoting its input) never shows it."""
    if isinstance(body, dict):
        for key, value in body.items():
            if secret_key(str(key)):
                register(value, min_length=4)
            else:
                _register_sent(value)
    elif isinstance(body, list):
        for value in body:
            _register_sent(value)


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every secret-looking field replaced."""
    return walk.masked(value, lambda key: bool(SECRET_KEYS.search(str(key))), "(redacted)", _scrubbed)


def _scrubbed(value: Any) -> Any:
    return scrub(_QUERY_SECRET.sub(r"\1(redacted)", value)) if isinstance(value, str) else value


def redact_url(url: str) -> str:
    return _QUERY_SECRET.sub(r"\1(redacted)", url)


def error_message(body: Any) -> str:
    """The human part of an error body, whatever envelope the API uses."""
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
        for key, val in body.items():
            inner = error_message(val)
            if inner:
                return inner if key in ("non_field_errors", "errors") else f"{key}: {inner}"
    if isinstance(body, list):
        for item in body:
            inner = error_message(item)
            if inner:
                return inner
    if isinstance(body, str):
        return body.strip()[:300]
    return ""


def network_cause(error: BaseException) -> str:
    """Why a connection failed, in words ("connection refused", "timed out"), from the
    operating system's error inside httpx's, never just the class name."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(error)).strip()
    if text:
        return text[0].lower() + text[1:]
    return re.sub(r"(?<!^)(?=[A-Z])", " ", error.__class__.__name__).lower()


def describe_failure(error: BaseException) -> str:
    """An exception in words: a network failure that escaped HttpApi (a raw httpx error)
    names the host and the cause, like HttpApi's own; anything else its class and text."""
    if isinstance(error, httpx.TransportError):
        try:
            url = error.request.url
            where = f" {url.scheme}://{url.netloc.decode()}"
        except (RuntimeError, AttributeError):
            where = ""
        if isinstance(error, httpx.ConnectError):
            return f"cannot connect to{where}: {network_cause(error)}"
        return f"connection to{where} failed: {network_cause(error)}"
    return f"{error.__class__.__name__}: {error}"


class HttpApi:
    """A small synchronous client over httpx.Client for one API.

    Thread-safe: the applier calls it from several worker threads.
    """

    def __init__(self, api: str, base_url: str, *, auth: httpx.Auth | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 30.0,
                 max_attempts: int = budget.MAX_ATTEMPTS, backoff: float = 0.25, max_backoff: float = 8.0,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], float] | None = None,
                 deadline: float | None = None):
        self.api = api
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep  # None: the budget's (budget.sleep)
        self._clock = clock  # None: the budget's (budget.clock)
        self.deadline = deadline  # seconds per call; None: budget.deadline_seconds()
        self._refused_since: float | None = None  # first connection refusal of a streak
        self._given_up = False  # a call gave up on this streak: the next ones try once
        self._client = httpx.Client(base_url=self.base_url, auth=auth, headers=headers or {},
                                    timeout=httpx.Timeout(timeout, connect=10.0),
                                    event_hooks={"request": [self._on_request]})
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0}

    def close(self) -> None:
        self._client.close()

    def _on_request(self, request: httpx.Request) -> None:
        for hook in list(_request_hooks):
            hook(self.api, request)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Retry-After as the server asked (the deadline decides whether it is waited),
        else exponential backoff with full jitter."""
        if response is not None and "retry-after" in response.headers:
            try:
                return max(0.0, float(response.headers["retry-after"]))
            except ValueError:
                pass
        return random.uniform(0, min(self.max_backoff, self.backoff * (2 ** attempt)))

    def _connect_timeout(self, now: float) -> httpx.Timeout | None:
        """While a host refuses, each connect waits only what is left of its 10 s."""
        if self._refused_since is None:
            return None
        left = budget.CONNECT_GIVE_UP - (now - self._refused_since)
        return httpx.Timeout(self._client.timeout.read, connect=max(1.0, min(10.0, left)))

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                data: Any = None, content: bytes | None = None, headers: dict | None = None,
                idempotent: bool | None = None, absolute: bool = False, auth: Any = None,
                decode: Callable[[bytes], Any] | None = None) -> Any:
        """Send a request; return the parsed JSON body (None for an empty body).

        `path` is relative to the base URL unless `absolute` (presigned URLs).
        `decode`: reads a successful body instead of the generic JSON reading (a listing
        straight into compact records); a ValueError from it falls back to the generic one.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        endpoint = f"{method} {redact_url(path.split('?')[0] if absolute else path)}"
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if content is not None:
            kwargs["content"] = content
        if auth is not None:
            kwargs["auth"] = auth
        with budget.call(self.max_attempts, self.deadline, self._clock, self._sleep) as spend:
            return self._send(method, path, kwargs, endpoint, idempotent, spend, decode)

    def _send(self, method: str, path: str, kwargs: dict[str, Any], endpoint: str, idempotent: bool,
              spend: budget.Budget, decode: Callable[[bytes], Any] | None = None) -> Any:
        attempt = 0  # this request's own, capped by max_attempts; `spend` is the call's
        wait = self._sleep or spend.wait
        while True:
            attempt += 1
            self._count("requests")
            response = None
            failure: TransportError | None = None
            timeout = self._connect_timeout(spend.now())
            if timeout is not None:
                kwargs["timeout"] = timeout
            try:
                _register_sent(kwargs.get("json"))
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s params=%s body=%s", method, redact_url(path),
                              redact(kwargs.get("params")), redact(kwargs.get("json", kwargs.get("data"))))
                # streamed, then the body kept here only: an httpx Response sits in a reference
                # cycle, so a read one would hold its body (MBs for a listing page) until the GC runs
                with self._client.stream(method, path, **kwargs) as response:
                    raw = b"".join(response.iter_bytes())
            except httpx.ConnectError as e:  # never reached the server: safe to retry
                if self._refused_since is None:
                    self._refused_since = spend.now()
                failure = TransportError(f"cannot connect to {self._origin(e)}: {network_cause(e)}",
                                         api=self.api, endpoint=endpoint)
                cause = network_cause(e)
            except (httpx.TransportError,) as e:  # sent, answer lost: in doubt
                self._refused_since, self._given_up = None, False
                failure = TransportError(f"connection to {self._origin(e)} lost: {network_cause(e)}",
                                         api=self.api, endpoint=endpoint)
                failure.in_doubt = not idempotent
                cause = network_cause(e)
                if not idempotent:
                    raise failure from None
            else:
                self._refused_since, self._given_up = None, False
                log.debug("-> %s %s", response.status_code, endpoint)
                status = response.status_code
                cause = f"{status} {response.reason_phrase}".strip()
            delay = self._delay(attempt, response)
            if failure is None:
                assert response is not None
                retryable = response.status_code in RETRY_STATUS and (idempotent or response.status_code == 429)
                if not retryable or not self._may_retry(attempt, delay, spend):
                    return self._result(response, raw, endpoint, idempotent, decode)
            elif not self._may_retry(attempt, delay, spend):
                self._given_up = self._refused_since is not None
                raise failure from None
            self._count("retries")
            spend.retried()
            report_retry(self.api, endpoint, cause, attempt + 1, delay)
            wait(delay)

    def _may_retry(self, attempt: int, delay: float, spend: budget.Budget) -> bool:
        if attempt >= self.max_attempts or not spend.allows(delay):
            return False
        refused = self._refused_since
        return refused is None or (not self._given_up and spend.now() + delay - refused <= budget.CONNECT_GIVE_UP)

    def _origin(self, error: httpx.TransportError) -> str:
        """scheme://host:port of the failed request (never its path or query: presigned URLs)."""
        try:
            url = error.request.url
            return f"{url.scheme}://{url.netloc.decode()}"
        except (RuntimeError, AttributeError):
            return self.base_url.split("?")[0]

    def _result(self, response: httpx.Response, raw: bytes, endpoint: str, idempotent: bool,
                decode: Callable[[bytes], Any] | None = None) -> Any:
        body: Any
        if decode is not None and raw and response.status_code < 400:
            try:
                return decode(raw)
            except ValueError:
                pass  # not the shape it reads: the generic reading, and its messages
        try:
            body = jsonlib.loads(raw) if raw else None
        except (ValueError, jsonlib.JSONDecodeError):
            body = raw.decode(response.charset_encoding or "utf-8", errors="replace")
        status = response.status_code
        if status < 400:
            return body
        message = error_message(body) or response.reason_phrase or "error"
        message = redact(message)
        kw = dict(api=self.api, endpoint=endpoint, status=status, body=redact(body))
        types = {401: AuthError, 403: AuthError, 404: NotFound, 409: Conflict, 429: RateLimited}
        err = types.get(status, ApiError)(message, **kw)
        err.in_doubt = status >= 500 and not idempotent
        if "retry-after" in response.headers:  # the engine's retry waits as asked, or gives up
            err.retry_after = self._delay(0, response)
        raise err
