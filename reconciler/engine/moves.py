"""Moves: an object the state knows under one address is now managed under another.

Used two ways: by the plan for the manifests' `moved:` entries (the state the planner sees
has the entries renamed, and the plan lists the moves, so no destroy and no create), and
by `reconciler state mv FROM TO`. Both rename with `rename`, which keeps the recorded
dependency edges pointing at the new addresses.

The tombstone an expiry left (state.expired) moves with its address too, so a renamed
block whose object expired is not made again; the deadline lives on the entry itself.

A block address moves its instances with it (`old[k]` -> `new[k]`) when neither end names
a key.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from reconciler.config.model import Move
from reconciler.errors import StateError
from reconciler.state.base import StateDoc


def _known(doc: StateDoc) -> set[str]:
    """Every address the state holds something for: an object, a create in flight, or the
    tombstone of an object an expiry destroyed (moved with it, or the object comes back)."""
    return set(doc.resources) | set(doc.pending) | set(doc.expired)


def pairs(doc: StateDoc, source: str, target: str) -> list[tuple[str, str]]:
    """(old, new) address pairs that moving `source` to `target` renames in `doc`."""
    known = _known(doc)
    found = [(source, target)] if source in known else []
    if "[" not in source and "[" not in target:
        prefix = source + "["
        found += [(a, target + a[len(source):]) for a in sorted(known) if a.startswith(prefix)]
    return found


def rename(doc: StateDoc, moves: Sequence[tuple[str, str]]) -> None:
    """Rename state entries in place (a copy's dicts, or the store's document)."""
    mapping = dict(moves)
    for old, new in moves:
        if old in doc.resources:
            doc.resources[new] = doc.resources.pop(old)
        if old in doc.pending:
            doc.pending[new] = doc.pending.pop(old)
        if old in doc.expired:
            doc.expired[new] = doc.expired.pop(old)
    for address, rs in list(doc.resources.items()):
        if any(d in mapping for d in rs.depends_on):
            doc.resources[address] = replace(rs, depends_on=sorted(mapping.get(d, d) for d in rs.depends_on))


def planned(state: StateDoc, moves: Sequence[Move]) -> tuple[StateDoc, list[tuple[str, str]], list[str]]:
    """The state as the plan sees it after the manifests' moves (the store's document is
    untouched), the (from, to) pairs carried out, and notes on moves that cannot be."""
    if not moves:
        return state, [], []
    done: list[tuple[str, str]] = []
    notes: list[str] = []
    taken = set(state.resources) | set(state.pending)  # and each target a move before this one took
    for m in moves:
        for old, new in pairs(state, m.source, m.target):
            if new in taken:  # two chains ending at one address: a second rename would drop the first
                notes.append(f"moved: {old} -> {new} ({m.position}) was not carried out: the state already "
                             f"manages {new}. Remove one of them from the state (`reconciler state rm`).")
                continue
            taken.add(new)
            done.append((old, new))
    if not done:
        return state, [], notes
    copy = replace(state, resources=dict(state.resources), pending=dict(state.pending), expired=dict(state.expired))
    rename(copy, done)
    return copy, done, notes


def checked(doc: StateDoc, source: str, target: str) -> list[tuple[str, str]]:
    """The pairs `state mv` renames, or StateError saying why not (nothing is renamed)."""
    found = pairs(doc, source, target)
    if not found:
        raise StateError(f"{source} is not in the state (`reconciler state list` shows what is)")
    kinds = {doc.resources[o].kind for o, _ in found if o in doc.resources}
    target_kind = target.split("[", 1)[0].rsplit(".", 1)[0]
    if kinds and kinds != {target_kind}:
        raise StateError(f"{source} is a {', '.join(sorted(kinds))}; {target} names a {target_kind}: "
                         "a move keeps the kind")
    taken = [new for _, new in found if new in doc.resources or new in doc.pending]
    if taken:
        raise StateError(f"{taken[0]} is already in the state; `reconciler state rm {taken[0]}` first "
                         "if it should be replaced")
    return found
