"""The watch's log: one line per event, text for people or JSON lines for log collectors.

    2026-12-02T03:10:00Z drift codeocean.data_asset.data: tags ["a"] -> ["a", "x"]
    {"time": "2026-12-02T03:10:00Z", "level": "info", "event": "drift", "address": ..., ...}

Values reach here already masked (drift.py); this module only formats. Lines are
written whole under a lock, so threads never interleave them.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from reconciler.config.sensitivity import scrub
from reconciler.config.terminal import json_line, shown
from reconciler.watch.drift import FieldMove, Moved

VALUE_WIDTH = 80


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def _value(v: Any) -> str:
    text = json.dumps(v, default=str, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 3] + "..."


def field_text(f: FieldMove) -> str:
    return f"{f.path} {_value(f.before)} -> {_value(f.after)}"


def moved_fields(m: Moved, after: str) -> list[dict]:
    """A Moved's fields for JSON: `after` names the new side ("live" or "manifest")."""
    return [{"field": f.path, "applied": f.before, after: f.after, "sensitive": f.sensitive} for f in m.fields]


class EventLog:
    def __init__(self, fmt: str = "text", out: TextIO | None = None):
        self.fmt = fmt
        self.out = out
        self._lock = threading.Lock()

    def emit(self, event: str, message: str = "", *, level: str = "info", address: str | None = None,
             **fields: Any) -> None:
        now = time.time()
        if self.fmt == "json":
            doc: dict[str, Any] = {"time": _iso(now), "level": level, "event": event}
            if address:
                doc["address"] = address
            doc.update({k: v for k, v in fields.items() if v is not None})
            if message:
                doc["message"] = message
            line = json_line(scrub(json.dumps(doc, default=str, ensure_ascii=False)))
        else:
            message = shown(" | ".join(message.splitlines()), one_line=True)
            address = shown(address, one_line=True) if address else address  # one problem a line elsewhere; one event a line here
            head = f"{_iso(now)} {event}"
            if level != "info":
                head += f" [{level}]"
            line = f"{head} {address}: {message}" if address else f"{head} {message}".rstrip()
        out = self.out or sys.stdout
        with self._lock:
            out.write(line + "\n")
            out.flush()
