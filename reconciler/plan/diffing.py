"""Left-scoped three-way diff (after kopf's diffs): compare only what the manifest sets.

    desired spec  ──┐
    live attrs    ──┼──▶ [FieldChange(path, old, new, forces_replacement)]
    last applied  ──┘    (a key we applied before and the manifest dropped is reset to None)

Fields the server added, or that someone else set (a datum property we never wrote), are
not ours: they are not compared and never shown as drift.

item_changes() then says what changed inside a list or dict value (deepdiff), called only
for the few values `==` found different.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable

from reconciler.config.model import UNKNOWN, Ref, Template
from reconciler.plan.model import FieldChange, ItemChange


def has_unknown(value: Any) -> bool:
    if value is UNKNOWN or isinstance(value, (Ref, Template)):
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
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
            if isinstance(new, dict) and not _matches(path, opaque):  # UNKNOWN is never a dict
                prior = before.get(key)
                walk(new, old if isinstance(old, dict) else {}, prior if isinstance(prior, dict) else {},
                     path + ".")
                continue
            if has_unknown(new) or not same(new, old):
                changes.append(FieldChange(path, old, UNKNOWN if has_unknown(new) else new,
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


_ABSENT = object()


def value_at(doc: Any, path: str) -> Any:
    """The value at a dotted path (a key holding dots is found as the remainder), or
    _ABSENT."""
    parts = path.split(".")
    for i, seg in enumerate(parts):
        if not isinstance(doc, dict):
            return _ABSENT
        rest = ".".join(parts[i:])
        if rest in doc:  # "properties.a.b" where the key is "a.b"
            return doc[rest]
        if seg not in doc:
            return _ABSENT
        doc = doc[seg]
    return doc


def live_only(changes: list[FieldChange], spec: dict,
              last_applied: dict | None) -> tuple[list[FieldChange], list[FieldChange]]:
    """(changes to act on, replace-forcing changes the user did not make).

    A field that forces a replacement is acted on only when the manifest's value differs
    from the one last applied: a live value that moved on its own (a unit the service
    normalised, a field its listing leaves out, a word we do not know) is drift to report,
    never a reason to destroy the object. Without a last applied spec (nothing recorded)
    every change stands."""
    if last_applied is None:
        return changes, []
    act, moved = [], []
    for c in changes:
        wanted = value_at(spec, c.path)
        if c.forces_replacement and not has_unknown(wanted) and _same_value(wanted, value_at(last_applied, c.path)):
            moved.append(c)
        else:
            act.append(c)
    return act, moved


def _same_value(a: Any, b: Any) -> bool:
    if a is _ABSENT and b is _ABSENT:
        return False  # not a manifest field: the kind's own finding (a failed object) stands
    if a is _ABSENT or b is _ABSENT:
        return (a is _ABSENT or a is None) and (b is _ABSENT or b is None)
    return same(a, b)


# list fields whose order means nothing: shown as items added and removed, never moved
SET_LIKE = frozenset({"tags", "users", "groups"})
_ADDED = {"iterable_item_added", "dictionary_item_added", "set_item_added", "attribute_added"}
_REMOVED = {"iterable_item_removed", "dictionary_item_removed", "set_item_removed", "attribute_removed"}


def item_changes(path: str, old: Any, new: Any, unordered: Iterable[str] = ()) -> tuple[ItemChange, ...]:
    """What changed inside a list or dict value (deepdiff), so that one tag added to forty
    shows as one line. Empty when either side is not a container, holds an unknown, or
    nothing differs. Fields named in SET_LIKE or `unordered` ignore order."""
    if not (isinstance(old, (list, dict)) and type(old) is type(new)) or old == new:
        return ()  # the equality fast path: deepdiff only for values that differ
    if has_unknown(new):
        return ()
    leaf = path.rsplit(".", 1)[-1]
    as_set = isinstance(old, list) and (leaf in SET_LIKE or leaf in set(unordered))
    if as_set and all(isinstance(v, (str, int, float, bool)) for v in itertools.chain(old, new)):
        # plain tags: set arithmetic, ~1000x faster than deepdiff's ignore_order (a plan
        # retagging a thousand datums stays instant)
        before, after = set(old), set(new)
        return tuple([ItemChange("remove", "", v, None) for v in dict.fromkeys(old) if v not in after] +
                     [ItemChange("add", "", None, v) for v in dict.fromkeys(new) if v not in before])
    from deepdiff import DeepDiff  # imported on first use: most plans never need it

    try:
        tree = DeepDiff(old, new, ignore_order=as_set, view="tree", verbose_level=2)
    except Exception:  # noqa: BLE001 - a value deepdiff cannot walk is shown whole
        return ()
    out: list[ItemChange] = []
    for report, levels in tree.items():
        for level in levels:
            keys = level.path(output_format="list")
            where = "" if as_set and len(keys) == 1 else _item_path(keys)
            if report in _ADDED:
                out.append(ItemChange("add", where, None, level.t2))
            elif report in _REMOVED:
                out.append(ItemChange("remove", where, level.t1, None))
            else:
                out.append(ItemChange("change", where, level.t1, level.t2))
    order = {"remove": 0, "change": 1, "add": 2}
    return tuple(sorted(out, key=lambda c: (_sort_key(c.path), order[c.op], str(c.old), str(c.new))))


def _item_path(keys: list) -> str:
    text = ""
    for k in keys:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else str(k))
    return text


def _sort_key(path: str) -> tuple:
    import re
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"\[(\d+)\]", path))
