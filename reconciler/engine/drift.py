"""Drift: the live services moving, not the manifests (Terraform's refresh-only plan).

    state (last applied) ──┐
    live objects         ──┼──▶ [Drift(address, gone | per-field changes)]
    (manifests: not read)  ┘

A managed object has drifted when something outside reconciler changed it (a field we
applied has another value now) or deleted it. An edit to one's own manifest is a pending
change for `plan`, never drift. Pure: the live objects come from the runner's observe.

record() is `apply --refresh-only`: the state takes the live values as the last applied
ones (a deleted object leaves the state), so the next drift check is clean.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping

from reconciler.config.sensitivity import covers, field_names, hidden
from reconciler.engine import recorded
from reconciler.plan.model import Drift, FieldChange
from reconciler.providers.contract import Kind, Live
from reconciler.state.base import StateDoc


def _name(live: Live) -> str | None:
    from reconciler.engine.planner import live_name
    return live_name(live)


def find_drift(state: StateDoc, live: dict[str, Live | None], kinds: Mapping[str, Kind],
               addresses: set[str] | None = None) -> list[Drift]:
    """Every managed object whose live values differ from what we last applied, or that is
    gone. Compared with the kind's own diff, so only the fields we applied count."""
    found: list[Drift] = []
    entries = state.resources.items() if addresses is None else \
        ((a, state.resources[a]) for a in addresses if a in state.resources)  # often few of them
    for address, prior in sorted(entries):
        kind = kinds.get(prior.kind)
        if kind is None or address not in live or (addresses is not None and address not in addresses):
            continue
        lv = live[address]
        if lv is None:
            found.append(Drift(address, prior.kind, prior.id, None, gone=True))
            continue
        try:
            changes = _moved(kind, prior.last_applied or {}, lv)
            if prior.sensitive_paths:  # a field derived from a secret: its applied value is one
                changes = [dataclasses.replace(c, sensitive=True) if covers(prior.sensitive_paths, c.path) else c
                           for c in changes]
        except Exception:  # noqa: BLE001 - an old last_applied a kind cannot read is not drift
            continue
        if changes:
            from reconciler.engine.planner import masked_changes, with_items
            shown = masked_changes(changes, set(field_names(kind)))  # nested secrets masked
            found.append(Drift(address, prior.kind, lv.id, _name(lv), changes=with_items(shown, kind)))
    return found


def _moved(kind: Kind, applied: dict, lv: Live) -> list[FieldChange]:
    """The kind's own diff of last applied against live, as old = applied, new = live."""
    # local files are the manifest's side: an edited file is a pending change, not drift
    diff = kind.diff(applied, dataclasses.replace(lv, local={}), applied)
    sensitive = field_names(kind)
    return [FieldChange(c.path, c.new, c.old, c.forces_replacement,
                        c.sensitive or hidden(c.path, sensitive, values=(c.old, c.new)))
            for c in diff.changes]


def record(state: StateDoc, live: dict[str, Live | None], drift: list[Drift], kinds: Mapping[str, Kind]) -> list[str]:
    """Take the live values into the state (apply --refresh-only). Returns what could not be
    recorded field by field (the object keeps its old last-applied value there)."""
    skipped: list[str] = []
    for d in drift:
        if d.gone:
            state.resources.pop(d.address, None)
            continue
        prior, lv, kind = state.resources[d.address], live.get(d.address), kinds.get(d.kind)
        if lv is None or kind is None:
            continue
        applied = copy.deepcopy(prior.last_applied or {})
        # from the live object again, not the drift as shown (masked): a secret the API does
        # not return keeps its last applied value
        for c in _moved(kind, prior.last_applied or {}, lv):
            if c.sensitive or not _set_path(applied, c.path, c.new):
                skipped.append(f"{d.address}.{c.path}")
        # an output echoing a field derived from a secret stays with the secrets, out of outputs
        outputs, secrets = recorded.split(lv, prior.sensitive_paths)
        state.resources[d.address] = dataclasses.replace(  # a new entry: state entries are values
            prior, last_applied=applied, outputs=outputs,
            secrets={**prior.secrets, **{k: v for k, v in secrets.items() if v is not None}})  # one not returned is kept
    return skipped


def _set_path(doc: dict, path: str, value: Any) -> bool:
    """Set a dotted path; a key holding dots ("properties.a.b") is found as the remainder.
    A path into a list (a volume's files) cannot be set this way: False."""
    parts = path.split(".")
    cur = doc
    for i, seg in enumerate(parts[:-1]):
        if isinstance(cur.get(seg), dict):
            cur = cur[seg]
            continue
        if seg in cur:  # a list or a value: not a place to set a field
            return False
        key = ".".join(parts[i:])
        break
    else:
        key = parts[-1]
    if not isinstance(cur, dict):
        return False
    if value is None:
        cur.pop(key, None)
    else:
        cur[key] = copy.deepcopy(value)
    return True
