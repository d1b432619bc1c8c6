"""Top-level `outputs:`: checked at load, shown as changes in plans, computed after apply
and kept in the state (`reconciler output` reads them there).

An output is sensitive when declared so, when it read a sensitive variable, or when it
references a sensitive attribute of a resource (a volume's secret_access_key), or an
attribute derived from one however many references away (`sensitivity.Taint`): such a
value is masked in plans, tables and JSON, sealed in the state with the other secrets,
and printed only when asked for by name.

State shape: {"outputs": {name: {"value": ..., "sensitive": bool}}}.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from reconciler.config import walk
from reconciler.config.hints import did_you_mean
from reconciler.config.model import UNKNOWN, Manifest, Output
from reconciler.config.sensitivity import Taint, holds_secret, sensitive_ref
from reconciler.engine.planner import resolve, state_outputs
from reconciler.plan.diffing import has_unknown
from reconciler.errors import Problem
from reconciler.plan.model import ActionType, FieldChange
from reconciler.state.base import StateDoc

if TYPE_CHECKING:  # typing only: the engine never imports a provider
    from reconciler.providers.contract import Kind


_refs = walk.refs


def problems(manifest: Manifest, kinds: Mapping[str, Kind]) -> list[Problem]:
    """References in outputs name resources of the manifests and attributes they have."""
    by_address = {r.address: r for r in manifest.resources}
    out = []
    for output in manifest.outputs.values():
        pos = output.position
        for ref in _refs(output.value):
            target = by_address.get(ref.address)
            if target is None:
                hint = did_you_mean(ref.address, by_address, quote=False)
                out.append(Problem(pos.file, pos.line, pos.column, f"outputs.{output.name}",
                                   f"{ref} refers to {ref.address}, which is not in the manifests{hint}"))
                continue
            kind = kinds.get(target.kind)
            attributes = set(kind.outputs) if kind is not None else None
            if attributes is not None and ref.attribute not in attributes:
                out.append(Problem(pos.file, pos.line, pos.column, f"outputs.{output.name}",
                                   f"{ref}: {target.kind} has no attribute '{ref.attribute}' "
                                   f"(it has: {', '.join(sorted(attributes))})"))
    return out


def is_sensitive(output: Output, manifest: Manifest, kinds: Mapping[str, Kind],
                 taint: Taint | None = None) -> bool:
    if output.sensitive:
        return True
    taint = taint or Taint(manifest.resources)
    return any(sensitive_ref(ref, kinds, taint) for ref in _refs(output.value))


def evaluate(manifest: Manifest, kinds: Mapping[str, Kind],
             lookup: Callable[[str, str], Any]) -> dict[str, dict]:
    """{name: {"value", "sensitive"}}; a value not (yet) known is UNKNOWN."""
    out = {}
    taint = Taint(manifest.resources)
    for name, output in manifest.outputs.items():
        value = resolve(output.value, lookup)
        out[name] = {"value": UNKNOWN if has_unknown(value) else value,
                     "sensitive": is_sensitive(output, manifest, kinds, taint) or holds_secret(value)}
    return out


def _others(manifest: Manifest, state: StateDoc) -> dict[str, Any]:
    """Recorded outputs that belong to manifest files this run did not load (a plan over
    some of a folder's files): kept as they are."""
    from reconciler.plan import scope

    if not state.outputs or not scope.some_files_only(manifest):
        return {}
    declared = set(manifest.outputs)
    return {name: o for name, o in state.outputs.items() if name not in declared}


def record(manifest: Manifest, kinds: Mapping[str, Kind], state: StateDoc, destroy: bool = False) -> bool:
    """Compute the outputs from what the state now holds; True if they changed."""
    fresh = {} if destroy else {name: o for name, o in evaluate(manifest, kinds, state_outputs(state)).items()
                                if o["value"] is not UNKNOWN}
    fresh.update(_others(manifest, state))
    if fresh == state.outputs:
        return False
    state.outputs = fresh
    return True


def planned_changes(manifest: Manifest, kinds: Mapping[str, Kind], state: StateDoc, live: Mapping[str, Any],
                    actions: list, destroy: bool = False) -> list[FieldChange]:
    """How the outputs would change if this plan were applied."""
    unknown = {a.address for a in actions if a.type in (ActionType.CREATE, ActionType.REPLACE)
               and not a.adopt}
    gone = {a.address for a in actions if a.type is ActionType.DELETE}
    recorded = state_outputs(state)

    def lookup(address: str, attribute: str) -> Any:
        if address in unknown or address in gone:
            return UNKNOWN
        lv = live.get(address)
        if lv is not None and attribute in lv.outputs:
            return lv.outputs[attribute]
        return recorded(address, attribute)

    after = {} if destroy else evaluate(manifest, kinds, lookup)
    others = _others(manifest, state)
    changes = []
    for name in sorted((set(after) | set(state.outputs)) - set(others)):
        old = state.outputs.get(name)
        new = after.get(name)
        old_value = old["value"] if old else None
        new_value = new["value"] if new else None
        if old is not None and new is not None and old_value == new_value:
            continue
        sensitive = bool((old and old.get("sensitive")) or (new and new["sensitive"]))
        changes.append(FieldChange(name, old_value, new_value, False, sensitive))
    return changes


__all__ = ["problems", "evaluate", "record", "planned_changes", "is_sensitive"]
