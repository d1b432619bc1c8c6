"""One "did you mean" for every message that names something unknown (a field, a kind, a
variable, an address), so they all suggest the same way."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, choices: Iterable[str], quote: bool = True) -> str:
    """"; did you mean 'x'?" for the closest choice, or "" (addresses go unquoted)."""
    match = difflib.get_close_matches(word, list(choices), n=1)
    if not match:
        return ""
    return f"; did you mean '{match[0]}'?" if quote else f"; did you mean {match[0]}?"
