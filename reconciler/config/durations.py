"""Durations as people write them in manifests and on the command line (30m, 8h, 1h30m,
2d) and as plans say them back ("3h12m").

Held to MAX: a deadline is now + the duration, and 99999999999999999d would overflow a
date (Python's ends in year 9999) instead of being one line of bad input."""
from __future__ import annotations

import math
import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_WHOLE = re.compile(r"^\s*(\d+(?:\.\d+)?\s*[dhms]\s*)+$")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX = timedelta(days=36500)  # 100 years: longer than any deadline or window anyone means
MAX_SAID = "36500d (100 years)"


def parse(text: str) -> timedelta | None:
    """A timedelta, or None when `text` is not a duration like 8h or 1h30m (or is over MAX)."""
    seconds = _seconds(text)
    return None if seconds is None or seconds > MAX.total_seconds() else timedelta(seconds=seconds)


def problem(text: str, example: str = "24h") -> str | None:
    """Why `text` is no duration a manifest may give, or None."""
    seconds = _seconds(text)
    if seconds is None:
        return f"expected a duration like {example}"
    if seconds > MAX.total_seconds():
        return f"{_short(text)} is over the limit of {MAX_SAID}"
    return None


def _seconds(text: str) -> float | None:
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        return None
    total = sum(float(n) * _SECONDS[u] for n, u in _PART.findall(text))  # inf for 400 digits
    return total if math.isfinite(total) else math.inf


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 24 else text[:20] + "..."


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
