"""Left-scoped three-way diff (after kopf's diffs): compare only what the manifest sets.

    desired spec  ──┐
    live attrs    ──┼──▶ [FieldChange(path, old, new, forces_replacement)]
    last applied  ──┘    (a key we applied before and the manifest dropped is reset to None)

Fields the server added, or that someone else set (a datum property we never wrote), are
not ours: they are not compared and never shown as drift.
"""
from __future__ import annotations

from typing import Any, Iterable

from reconciler.model import UNKNOWN, FieldChange, Ref, Template


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN or isinstance(value, (Ref, Template)):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _matches(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def same(a: Any, b: Any) -> bool:
    """Equality that treats 1 and 1.0 alike but not True and 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    return a == b


def left_diff(spec: dict, live: dict, last_applied: dict | None = None, *,
              replace_on: Iterable[str] = (), opaque: Iterable[str] = (),
              sensitive: Iterable[str] = (), prefix: str = "") -> list[FieldChange]:
    """Changes needed to make `live` match `spec`, scoped to the keys `spec` sets.

    replace_on: paths whose change forces a replacement (prefix match).
    opaque:     paths compared as a whole value, not key by key (e.g. a `details` blob the
                API replaces wholesale).
    sensitive:  field names whose values are masked when shown.
    """
    replace_on, opaque, sensitive = tuple(replace_on), tuple(opaque), set(sensitive)
    changes: list[FieldChange] = []
    last_applied = last_applied or {}

    def walk(want: dict, have: dict, before: dict, base: str) -> None:
        for key, new in want.items():
            path = f"{base}{key}"
            old = have.get(key) if isinstance(have, dict) else None
            if isinstance(new, dict) and not _matches(path, opaque) and not _has_unknown_top(new):
                walk(new, old if isinstance(old, dict) else {},
                     before.get(key) if isinstance(before.get(key), dict) else {}, path + ".")
                continue
            if _has_unknown(new) or not same(new, old):
                changes.append(FieldChange(path, old, UNKNOWN if _has_unknown(new) else new,
                                           _matches(path, replace_on), key in sensitive))
        # keys we set before and the manifest no longer sets: reset them
        for key, old_applied in before.items():
            if key in want:
                continue
            path = f"{base}{key}"
            current = have.get(key) if isinstance(have, dict) else None
            if current is not None:
                changes.append(FieldChange(path, current, None, _matches(path, replace_on),
                                           key in sensitive))

    walk(spec, live or {}, last_applied, prefix)
    return changes


def _has_unknown_top(value: dict) -> bool:
    return value is UNKNOWN


def subset_equal(spec: dict, live: dict) -> bool:
    """Fast path: is every key the spec sets equal in live? (no allocation of changes)"""
    for key, want in spec.items():
        have = live.get(key) if isinstance(live, dict) else None
        if isinstance(want, dict):
            if not isinstance(have, dict) or not subset_equal(want, have):
                return False
        elif _has_unknown(want) or not same(want, have):
            return False
    return True
