"""Three-way merge of a datum's properties, tags and alias. Pure: no I/O.

    manifest (spec) ──┐
    datum (live)   ───┼──▶ changes ──▶ one metadata body {"key": value|null,
    last applied   ───┘                                  "valohai.tags": [...],
                                                         "valohai.alias": "name"|null}

Only what the manifest set is ours:
* a property is compared only if the manifest sets it; a key we set before and the
  manifest dropped is sent as null (removed); keys others set are never touched;
* tags: ours are added, ours that the manifest dropped are removed, others' stay.
  Valohai replaces the whole tag list, so the body carries the merged list;
* alias: the manifest's alias must point at this datum; one we set before and the
  manifest dropped is detached.
"""
from __future__ import annotations

from typing import Any

from reconciler.plan.diffing import has_unknown, left_diff, same
from reconciler.plan.model import FieldChange

TAGS, ALIAS = "valohai.tags", "valohai.alias"


def live_attrs(datum: dict, aliases: list[str], spec: dict | None, assumed: dict | None = None) -> dict:
    """A datum's properties, tags and alias in manifest shape. `alias` is the manifest's
    alias when it points here (a datum may have several), else the first one.

    Valohai documents neither the field names nor the shape: `metadata` may be an object
    or a list of {key, value} pairs. A datum without `metadata` or `tags` tells nothing
    of them: they are taken to be what we last applied (`assumed`), and `unread` names
    them, so the plan can say it could not compare them."""
    wanted = (spec or {}).get("alias")
    assumed = assumed or {}
    unread = [f for f, key in (("properties", "metadata"), ("tags", "tags")) if key not in datum]
    props = read_properties(datum["metadata"]) if "metadata" in datum else dict(assumed.get("properties") or {})
    tags = datum.get("tags") if "tags" in datum else assumed.get("tags")
    attrs = {"properties": props, "tags": [tag_name(t) for t in tags or []],
             "alias": wanted if wanted in aliases else (aliases[0] if aliases else None),
             "aliases": list(aliases)}
    if unread:
        attrs["unread"] = unread
    return attrs


def read_properties(metadata: Any) -> dict:
    """Properties from an object or a list of {key, value} (or {name, value}) pairs."""
    if isinstance(metadata, dict):
        return dict(metadata)
    if metadata is None:
        return {}
    if isinstance(metadata, list) and all(isinstance(p, dict) and isinstance(p.get("key", p.get("name")), str)
                                          for p in metadata):
        return {p.get("key", p.get("name")): p.get("value") for p in metadata}
    raise ValueError(f"datum field `metadata` is neither an object nor a list of {{key, value}}: "
                     f"got {str(metadata)[:60]!r}")


def diff(spec: dict, live: dict, last_applied: dict | None) -> list[FieldChange]:
    last = last_applied or {}
    want_props = spec.get("properties") or {}
    if _properties_match(want_props, live.get("properties") or {}, last.get("properties") or {}):
        changes: list[FieldChange] = []  # the common case, without building paths
    else:
        changes = left_diff({"properties": want_props}, {"properties": live.get("properties") or {}},
                            {"properties": last.get("properties") or {}},
                            opaque=[f"properties.{k}" for k in want_props])  # a value is replaced whole
    live_tags, ours, ours_before = live.get("tags") or [], spec.get("tags") or [], last.get("tags") or []
    if not _tags_match(live_tags, ours, ours_before):
        changes.append(FieldChange("tags", list(live_tags), merged_tags(live_tags, ours, ours_before)))
    aliases = live.get("aliases") or []
    if spec.get("alias") and spec["alias"] not in aliases:
        changes.append(FieldChange("alias", live.get("alias"), spec["alias"]))
    elif not spec.get("alias") and last.get("alias") and last["alias"] in aliases:
        changes.append(FieldChange("alias", last["alias"], None))
    return changes


def _properties_match(want: dict, have: dict, before: dict) -> bool:
    """True when left_diff would find nothing: every property we want is there with the
    same value, and none we set before and dropped is still there."""
    for key, value in want.items():
        found = have.get(key, _ABSENT)
        if type(value) in _SCALARS:  # the common case without the calls: `same` of a str or a number
            if found is _ABSENT or type(found) is bool or value != found:
                return False
        elif found is _ABSENT or has_unknown(value) or not same(value, found):
            return False
    if before.keys() <= want.keys():  # nothing of ours dropped
        return True
    return all(key in want or have.get(key) is None for key in before)


_ABSENT = object()
_SCALARS = frozenset({str, int, float})  # never unknown; bool is its own type


def _tags_match(live: list[str], ours: list[str], ours_before: list[str]) -> bool:
    """True when merged_tags would give the live tags back (as a set): ours are all there
    and none we dropped is, without building the merged list."""
    have = set(live)
    if not have.issuperset(ours):
        return False
    return ours == ours_before or have.isdisjoint(set(ours_before) - set(ours))


def tag_name(tag: Any) -> str:
    """A tag as a string, or as an object naming it ({"name": ...}, {"tag": ...})."""
    if isinstance(tag, dict):
        name = next((tag[k] for k in ("name", "tag", "value", "label") if isinstance(tag.get(k), str)), None)
        if name is not None:
            return name
    return str(tag)


def merged_tags(live: list[str], ours: list[str], ours_before: list[str]) -> list[str]:
    """Others' tags kept, ours added, ours the manifest dropped removed."""
    dropped = set(ours_before) - set(ours)
    kept = [t for t in live if t not in dropped]
    return kept + [t for t in ours if t not in kept]


def body_for(changes: list[FieldChange]) -> dict:
    """The metadata body that carries out these changes (replacement fields excluded)."""
    body: dict[str, Any] = {}
    for c in changes:
        if c.path.startswith("properties."):
            body[c.path[len("properties."):]] = c.new
        elif c.path == "tags":
            body[TAGS] = c.new
        elif c.path == "alias":
            body[ALIAS] = c.new
    return body


def release_body(live: dict, last_applied: dict | None) -> dict:
    """Remove what we set (properties, tags, alias) and nothing else."""
    last = last_applied or {}
    body: dict[str, Any] = {k: None for k in (last.get("properties") or {})
                            if k in (live.get("properties") or {})}
    tags = merged_tags(live.get("tags") or [], [], last.get("tags") or [])
    if tags != list(live.get("tags") or []):
        body[TAGS] = tags
    if last.get("alias") and last["alias"] in (live.get("aliases") or []):
        body[ALIAS] = None  # Valohai detaches the aliases pointing at this datum
    return body


def after(live: dict, body: dict) -> dict:
    """The attributes once Valohai has applied `body` (merge; null removes)."""
    attrs = {**live, "properties": dict(live.get("properties") or {})}
    for key, value in body.items():
        if key == TAGS:
            attrs["tags"] = list(dict.fromkeys(value or []))
        elif key == ALIAS:  # a new alias joins the others; null detaches them all
            attrs["aliases"] = list(dict.fromkeys([*(live.get("aliases") or []), value])) if value else []
            attrs["alias"] = value
        elif value is None:
            attrs["properties"].pop(key, None)
        else:
            attrs["properties"][key] = value
    return attrs
