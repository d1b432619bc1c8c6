"""Live states by meaning: running, stopped, in transition, failed, gone.

Services name their states in their own words and in any case (`Running`, `pending`,
`PROVISIONING`); the documents list few of them. A kind gives its table of known words;
`classify` reads a word case-insensitively, and a word no table knows is in transition
(unrecognised): waited on up to the timeout and then reported, never taken as a
failure or a reason to replace or delete anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping


class Phase(Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    IN_TRANSITION = "in transition"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class Status:
    """A live state word and what it means; `known` is False for a word no table lists."""

    word: str
    phase: Phase
    known: bool = True

    def __str__(self) -> str:
        if self.known:
            return self.word
        return f"in transition (unrecognised {self.word!r})"


def classify(word: Any, table: Mapping[str, Phase]) -> Status:
    """The phase of a live state word; an absent or unknown word is in transition."""
    text = str(word).strip() if word is not None else ""
    phase = table.get(text.lower())
    if phase is None:
        return Status(text or "(none)", Phase.IN_TRANSITION, known=False)
    return Status(text.lower(), phase)


__all__ = ["Phase", "Status", "classify"]
