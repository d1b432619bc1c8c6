"""The leaf every renderer shares: one value as text (whole or cut), money, and Markdown
escaping. Imports nothing of render/, so text, markdown, outputs and json never import
each other in a circle."""
from __future__ import annotations

import json
import re
from typing import Any

from reconciler.config.model import UNKNOWN
from reconciler.config.terminal import escape as terminal_escape
from reconciler.plan.model import HOURS_PER_MONTH

MAX_VALUE = 120


def full_value(v: Any, sensitive: bool = False) -> str:
    """A value as one JSON-ish string, never cut."""
    if sensitive and v is not None:
        return "(sensitive)"
    if v is UNKNOWN:
        return "(known after apply)"
    if v is None:
        return "null"
    text = v if isinstance(v, str) and "\n" not in v else json.dumps(v, sort_keys=True, default=str)
    return json.dumps(text) if isinstance(v, str) else text


def value(v: Any, sensitive: bool = False) -> str:
    text = full_value(v, sensitive)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 12] + f"... ({len(text)} chars)"


def money(hourly: float | None, *, sign: bool = False) -> str:
    if hourly is None:
        return "-"
    prefix = ("+" if hourly >= 0 else "-") if sign else ""
    return f"{prefix}${abs(hourly):,.2f}/h ({prefix}${abs(hourly) * HOURS_PER_MONTH:,.2f}/month)"


# characters Markdown or HTML could read as syntax (and @, which would mention someone)
_SPECIAL = re.compile(r"[\\`*_\[\]<>!|~&@]")


def escape(text: str) -> str:
    """Text that renders as itself, in a paragraph or a table cell: Markdown and HTML
    characters become numeric entities, newlines a visible ↵, control characters and
    bidi overrides a visible escape (a U+202E in a PR comment would reorder the text)."""
    text = terminal_escape(str(text).replace("\r\n", "\n"))
    text = _SPECIAL.sub(lambda m: f"&#{ord(m.group())};", text)
    return text.replace("\n", "↵")


def code(text: str) -> str:
    return f"<code>{escape(text)}</code>"
