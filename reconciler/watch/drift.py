"""What moved since the last apply, per resource, read from one plan:

* drift: the live object differs from what was last applied to it (someone changed or
  deleted it outside reconciler): the last applied spec diffed against the live object.
* pending: the manifests differ from what was last applied (a resource added, edited or
  removed, or a create an interrupted apply left journaled).

Only resources the plan would change are looked at: a resource that is up to date with
its manifest is nothing to report, whatever its history.

Drift is the runner's definition (reconciler/drift.py, issue 18), the same `reconciler
drift` reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from reconciler.config import walk
from reconciler.config.sensitivity import field_names, hidden
from reconciler.engine.planner import PlanResult, ignored
from reconciler.plan.diffing import left_diff
from reconciler.providers.contract import Live
from reconciler.state.base import StateDoc

SENSITIVE = "(sensitive)"


@dataclass(frozen=True)
class FieldMove:
    path: str
    before: Any  # the last applied value
    after: Any  # the live value (drift) or the manifest's (pending)
    sensitive: bool = False


@dataclass(frozen=True)
class Moved:
    address: str
    kind: str
    what: str  # drift: changed | deleted; pending: added | changed | removed | interrupted
    fields: tuple[FieldMove, ...] = ()

    @property
    def signature(self) -> tuple:
        """Equal signatures mean nothing new to report."""
        return self.what, tuple((f.path, repr(f.before), repr(f.after)) for f in self.fields)


def find_drift(result: PlanResult, state: StateDoc, live: dict[str, Live | None],
               kinds: dict[str, Any]) -> dict[str, Moved]:
    """The runner's drift (reconciler.engine.drift, as `reconciler drift` reports it), for the
    resources the plan would change, minus lifecycle.ignore_changes; values masked."""
    from reconciler.engine.drift import find_drift as live_moves

    changing = {a for a, s in result.steps.items() if s.action.is_change}
    out: dict[str, Moved] = {}
    for d in live_moves(state, live, kinds, addresses=changing):
        if d.gone:
            out[d.address] = Moved(d.address, d.kind, "deleted")
            continue
        step = result.steps[d.address]
        ignore = step.resource.lifecycle.ignore_changes if step.resource else ()
        fields = _moves([c for c in d.changes if not ignored(c.path, ignore)], kinds.get(d.kind), live_first=False)
        if fields:
            out[d.address] = Moved(d.address, d.kind, "changed", fields)
    return out


def find_pending(result: PlanResult, state: StateDoc, kinds: dict[str, Any]) -> dict[str, Moved]:
    out: dict[str, Moved] = {}
    for address, step in result.steps.items():
        if not step.action.is_change:
            continue
        kind_name, prior = step.action.kind, step.prior
        if step.resource is None:
            out[address] = Moved(address, kind_name, "removed" if prior else "interrupted")
        elif prior is None:
            out[address] = Moved(address, kind_name, "interrupted" if step.pending else "added")
        else:
            changes = left_diff(step.spec or {}, prior.last_applied, prior.last_applied)
            changes = [c for c in changes if not ignored(c.path, step.resource.lifecycle.ignore_changes)]
            fields = _moves(changes, kinds.get(kind_name), live_first=False,
                            derived=[*step.derived, *step.resource.sensitive_paths])
            if fields:
                out[address] = Moved(address, kind_name, "changed", fields)
    return out


def _moves(changes: list, kind: Any, live_first: bool, derived: Sequence[str] = ()) -> tuple[FieldMove, ...]:
    """FieldChanges as moves from the applied value; secrets masked, at any depth, and so
    are fields derived from a secret (however many references away)."""
    sensitive = set(field_names(kind))
    moves = []
    for c in changes:
        masked = c.sensitive or hidden(c.path, sensitive, derived, (c.old, c.new))
        before, after = (c.new, c.old) if live_first else (c.old, c.new)
        if masked:
            before = SENSITIVE if before is not None else None
            after = SENSITIVE if after is not None else None
        else:
            before, after = _mask(before, sensitive), _mask(after, sensitive)
        moves.append(FieldMove(c.path, before, after, masked))
    return tuple(moves)


def _mask(value: Any, sensitive: set[str]) -> Any:
    return walk.masked(value, sensitive.__contains__, SENSITIVE)
