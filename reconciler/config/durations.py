"""Durations as people write them in manifests and on the command line (30m, 8h, 1h30m,
2d) and as plans say them back ("3h12m")."""
from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_WHOLE = re.compile(r"^\s*(\d+(?:\.\d+)?\s*[dhms]\s*)+$")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse(text: str) -> timedelta | None:
    """A timedelta, or None when `text` is not a duration like 8h or 1h30m."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        return None
    return timedelta(seconds=sum(float(n) * _SECONDS[u] for n, u in _PART.findall(text)))


def say(delta: timedelta) -> str:
    """3h12m, 2d4h, 45s: the two largest units, rounded down (a deadline passed: 0s)."""
    seconds = max(0, int(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)
