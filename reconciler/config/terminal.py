"""Text bound for a terminal or a log, made harmless: every C0 and C1 control character
(ESC starts a window-title or screen-clearing sequence, NUL and BEL confuse log readers)
and every bidirectional override (U+202E shows "exe.txt" as "txt.exe") is written as a
visible escape, `\\x1b` or `\\u202e`. A value from a manifest, an API or an error reaches
the user's screen only through here (or JSON's own escaping)."""
from __future__ import annotations

import re

# C0 except tab and newline, DEL, C1; bidi embeddings/overrides/isolates and marks
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, one_line: bool = False) -> str:
    """`text` with control characters and bidi overrides made visible; `one_line`
    escapes newlines and tabs too (a value inside a line)."""
    if not isinstance(text, str):
        text = str(text)
    return (_UNSAFE_LINE if one_line else _UNSAFE).sub(_visible, text)


def shown(text: str, *, one_line: bool = False) -> str:
    """What may be shown: every secret the run handles replaced, then escaped."""
    from reconciler.config.sensitivity import scrub
    return escape(scrub(text), one_line=one_line)


def json_line(line: str) -> str:
    """A JSON document's text with C1 controls and bidi overrides as \\u escapes (JSON
    escapes C0 itself; these may only stand inside strings, where \\uXXXX is the same
    character to a JSON reader)."""
    return re.sub("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]",
                  lambda m: f"\\u{ord(m.group()):04x}", line)


_OUR_COLORS = re.compile(r"(\x1b\[[0-9;]*m)")


def escape_keeping_colors(text: str) -> str:
    """A whole rendered document made safe: colour sequences (SGR, ESC [ ... m, all a
    renderer paints with) pass, every other control or override is escaped."""
    parts = _OUR_COLORS.split(text)
    return "".join(p if i % 2 else escape(p) for i, p in enumerate(parts))
