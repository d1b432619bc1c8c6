"""The exception tree. Every error the user can see is one of these.

    ReconcilerError                 base; str(e) is a one-line message for the user
    ├── ManifestError               bad input: carries file, line, column and field path
    │   └── CycleError              references that go round in a circle
    ├── StateError                  the state store: unreadable, wrong lineage
    │   ├── LockError               another process holds the lock (names the holder)
    │   └── StaleStateError         compare-and-swap on the serial failed
    ├── PlanError                   a plan that cannot be made or applied (stale plan file,
    │   │                           prevent_destroy, ...)
    │   └── PolicyDenied            a policy with enforcement deny failed (exit 3)
    ├── ApiError                    an API answered with an error (names API and endpoint)
    │   ├── AuthError               401 / 403
    │   ├── NotFound                404
    │   ├── Conflict                409, or "already exists"
    │   ├── RateLimited             429 after every retry
    │   └── TransportError          connection refused, dropped, timed out after every retry
    └── ApplyError                  one or more actions failed; carries the summary

Messages never contain credentials: http.py redacts before raising.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# what str.splitlines() breaks a line at: a value holding one (a YAML key or value echoed
# in a problem) must not split its problem's line
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with its line breaks written as visible escapes (\\n, \\x0b, \\u2028)."""
    return _LINE_BREAKS.sub(_visible_break, text)


def _visible_break(m: re.Match) -> str:
    char = m.group()
    if char in "\n\r":
        return repr(char)[1:-1]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


class ReconcilerError(Exception):
    """Base class. The message is one line the CLI prints as `Error: <message>`."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, pinned to a place in a file."""

    file: str
    line: int
    column: int
    path: str  # dotted field path, e.g. "resources[2].spec.details.vcpus"
    message: str

    def __str__(self) -> str:
        # line 0: a problem with the path itself (missing, no manifests in it): no invented 1:1
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ReconcilerError):
    """Bad input. Holds every problem found, so the user fixes them in one go."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(one_line(str(p)) for p in self.problems))  # one line per problem


class CycleError(ManifestError):
    pass


class StateError(ReconcilerError):
    pass


class LockError(StateError):
    pass


class StaleStateError(StateError):
    pass


class PlanError(ReconcilerError):
    pass


class PolicyDenied(PlanError):
    """A plan a policy denies: nothing is applied; the CLI exits 3."""

    exit_code = 3


class ApiError(ReconcilerError):
    # the request may have taken effect though no answer says so (a lost connection or a
    # 5xx after a non-idempotent call): a create is then looked up before it is retried
    in_doubt: bool = False
    retry_after: float | None = None  # seconds the server asked us to wait (Retry-After)

    def __init__(self, message: str, *, api: str = "", endpoint: str = "", status: int | None = None,
                 body: object = None):
        self.api, self.endpoint, self.status, self.body = api, endpoint, status, body
        prefix = f"{api} {endpoint}: " if api or endpoint else ""
        code = f" (HTTP {status})" if status else ""
        super().__init__(f"{prefix}{message}{code}")


class AuthError(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class RateLimited(ApiError):
    pass


class TransportError(ApiError):
    pass


class ApplyError(ReconcilerError):
    def __init__(self, summary: str, failures: dict[str, str] | None = None):
        self.failures = failures or {}
        super().__init__(summary)


class CreatedIncomplete(ReconcilerError):
    """A create made its object (and may hold secrets the API returns only once), then a
    later step failed. The applier records `live` in the state so nothing is lost or made
    twice, and finishes the object as an update."""

    def __init__(self, live: object, cause: BaseException):
        self.live, self.cause = live, cause
        super().__init__(str(cause))
