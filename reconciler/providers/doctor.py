"""`reconciler doctor`: before a first apply against real accounts, check read-only that
each configured service answers as the providers expect.

Each provider that can be checked has a `doctor(client) -> list[Finding]` (its module
providers/<api>/doctor.py): credentials, every listing a plan uses, and the fields the
providers read in each answer. A field in a shape the providers tolerate is a note that
names the emulator quirk it matches; a shape they cannot read, or a refused call, is a
problem. No call changes anything (logins and searches are the only POSTs).

This module knows no API: it runs the providers' checks, and renders and scrubs the
report (ids, e-mail addresses and the configured secrets removed, so it can be attached
to a bug report).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

from reconciler.errors import ReconcilerError

OK, NOTE, PROBLEM = "ok", "note", "problem"


@dataclass
class Finding:
    service: str  # "valdi", "valohai", "codeocean"
    check: str  # what was asked: "GET /v1/vm", "login"
    status: str  # ok | note | problem
    message: str
    quirk: str | None = None  # the emulator quirk this shape matches, if any

    def line(self) -> str:
        quirk = f" (matches quirk {self.quirk})" if self.quirk else ""
        return f"{self.service}: {self.check}: {self.message}{quirk}"


@dataclass
class Checks:
    """A provider's findings, collected as its checks run."""

    service: str
    findings: list[Finding] = field(default_factory=list)

    def ok(self, check: str, message: str) -> None:
        self.findings.append(Finding(self.service, check, OK, message))

    def note(self, check: str, message: str, quirk: str | None = None) -> None:
        self.findings.append(Finding(self.service, check, NOTE, message, quirk))

    def problem(self, check: str, message: str, quirk: str | None = None) -> None:
        self.findings.append(Finding(self.service, check, PROBLEM, message, quirk))

    def call(self, check: str, fn: Callable[[], Any]) -> Any:
        """fn's answer, or None with a problem saying why the call failed."""
        try:
            return fn()
        except ReconcilerError as e:
            self.problem(check, str(e))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            self.problem(check, f"the answer is not in the shape the providers read ({e.__class__.__name__}: {e})")
        return None

    def fields(self, check: str, what: str, item: Any, wanted: Mapping[str, tuple[type, ...]]) -> bool:
        """Each wanted field present with one of its types; a problem per one that is not."""
        if not isinstance(item, dict):
            self.problem(check, f"{what} is {type(item).__name__}, not an object")
            return False
        good = True
        for name, types in wanted.items():
            if name not in item:
                self.problem(check, f"{what} has no `{name}`")
                good = False
            elif not isinstance(item[name], types):
                self.problem(check, f"{what} `{name}` is {type(item[name]).__name__} "
                                    f"({', '.join(t.__name__ for t in types)} expected)")
                good = False
        return good


def run(services: dict[str, Callable[[], Any]], doctors: dict[str, Callable[[Any], list[Finding]]]
        ) -> list[Finding]:
    """Each service's checks: `services` makes its client (may raise on bad configuration),
    `doctors` checks with it."""
    findings: list[Finding] = []
    for name, connect in services.items():
        doctor = doctors.get(name)
        if doctor is None:
            findings.append(Finding(name, "checks", NOTE, "this provider has no read-only checks"))
            continue
        try:
            client = connect()
        except ReconcilerError as e:
            findings.append(Finding(name, "configuration", PROBLEM, str(e).replace("\n", "; ")))
            continue
        try:
            findings.extend(doctor(client))
        except ReconcilerError as e:  # a check that did not catch its own error
            findings.append(Finding(name, "checks", PROBLEM, str(e)))
    return findings


def exit_code(findings: Iterable[Finding]) -> int:
    return 1 if any(f.status == PROBLEM for f in findings) else 0


def render_text(findings: list[Finding]) -> str:
    """One line per problem and note; a summary line per service that is fine."""
    lines = []
    for service in dict.fromkeys(f.service for f in findings):
        mine = [f for f in findings if f.service == service]
        bad = [f for f in mine if f.status != OK]
        lines += [("problem: " if f.status == PROBLEM else "note: ") + f.line() for f in bad]
        if not any(f.status == PROBLEM for f in mine):
            done = ", ".join(dict.fromkeys(f.check for f in mine if f.status == OK))
            lines.append(f"ok: {service}: {done}")
    problems = sum(f.status == PROBLEM for f in findings)
    lines.append(f"{problems} problem(s)." if problems else "All checks passed.")
    return "\n".join(lines) + "\n"


UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
TOKENISH = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}\b")  # long opaque strings: ids, keys
URL_HOST = re.compile(r"\bhttps?://[^/\s\"']+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with the given secrets, ids, e-mail addresses and hosts removed."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    text = URL_HOST.sub("<host>", text)
    text = EMAIL.sub("<email>", text)
    text = UUID.sub("<id>", text)
    return TOKENISH.sub("<id>", text)


def render_json(findings: list[Finding], secrets: Iterable[str] = ()) -> str:
    secrets = list(secrets)
    clean = [{k: (scrub(v, secrets) if isinstance(v, str) else v) for k, v in asdict(f).items()}
             for f in findings]
    services: dict[str, dict] = {}
    for f in clean:
        entry = services.setdefault(f["service"], {"ok": True, "checks": []})
        entry["checks"].append({k: v for k, v in f.items() if k != "service"})
        entry["ok"] = entry["ok"] and f["status"] != PROBLEM
    return json.dumps({"ok": exit_code(findings) == 0, "services": services,
                       "quirks_seen": sorted({f.quirk for f in findings if f.quirk})}, indent=2) + "\n"
