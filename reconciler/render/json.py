"""The JSON plan: documented and versioned by schemas/plan.schema.json.

Like OpenTofu's JSON plan, a replace is listed as actions ["delete", "create"], and a
forget as ["forget"] (release and orphan likewise). Sensitive values are replaced by
{"sensitive": true}; values known only after apply by {"unknown": true}. Values are
whole, never cut.
"""
from __future__ import annotations

import json
from typing import Any

from reconciler.config.model import UNKNOWN
from reconciler.config.sensitivity import scrub
from reconciler.plan.model import (
    HOURS_PER_MONTH,
    Action,
    ActionType,
    Drift,
    FieldChange,
    Plan,
)
from reconciler.render import policies as guardrails
from reconciler.render.outputs import json_list

PLAN_FORMAT_VERSION = "2.0"
_ACTIONS = {ActionType.CREATE: ["create"], ActionType.UPDATE: ["update"],
            ActionType.REPLACE: ["delete", "create"], ActionType.DELETE: ["delete"],
            ActionType.FORGET: ["forget"], ActionType.RELEASE: ["release"], ActionType.ORPHAN: ["orphan"],
            ActionType.NOOP: ["no-op"]}


def _value(v: Any, sensitive: bool) -> Any:
    if sensitive and v is not None:
        return {"sensitive": True}
    if v is UNKNOWN:
        return {"unknown": True}
    if isinstance(v, dict):
        return {k: _value(x, False) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x, False) for x in v]
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


def _monthly(hourly: float | None) -> float | None:
    return None if hourly is None else round(hourly * HOURS_PER_MONTH, 2)


def _change(c: FieldChange) -> dict:
    return {"path": c.path, "before": _value(c.old, c.sensitive), "after": _value(c.new, c.sensitive),
            "forces_replacement": c.forces_replacement, "sensitive": c.sensitive,
            "items": [{"op": i.op, "path": i.path, "before": _value(i.old, False), "after": _value(i.new, False)}
                      for i in c.items]}


def _resource(a: Action) -> dict:
    return {
        "address": a.address, "kind": a.kind, "actions": _ACTIONS[a.type], "adopt": a.adopt,
        "imported": a.imported, "moved_from": a.moved_from,
        "deletion_policy": a.policy, "effect": a.effect,
        "remote_id": a.remote_id, "remote": {"id": a.remote_id, "name": a.remote_name},
        "reasons": [scrub(r) for r in a.reasons], "warnings": [scrub(w) for w in a.warnings], "depends_on": list(a.depends_on),
        "changes": [_change(c) for c in a.changes],
        "cost": None if a.cost_before is None and a.cost_after is None else
        {"hourly_before": a.cost_before, "hourly_after": a.cost_after,
         "monthly_before": _monthly(a.cost_before), "monthly_after": _monthly(a.cost_after)},
    }


def drift_to_dict(d: Drift) -> dict:
    return {"address": d.address, "kind": d.kind, "remote": {"id": d.remote_id, "name": d.remote_name},
            "gone": d.gone, "changes": [_change(c) for c in d.changes]}


def plan_to_dict(plan: Plan) -> dict:
    imported = sum(1 for a in plan.actions if a.imported)  # counted apart from the adds, as the text plan does
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "destroy": plan.destroy, "refresh_only": plan.refresh_only,
        "summary": {"add": plan.count(ActionType.CREATE) - imported, "change": plan.count(ActionType.UPDATE),
                    "replace": plan.count(ActionType.REPLACE), "destroy": plan.count(ActionType.DELETE),
                    "forget": plan.count(ActionType.FORGET), "release": plan.count(ActionType.RELEASE),
                    "orphan": plan.count(ActionType.ORPHAN),
                    "unchanged": plan.count(ActionType.NOOP), "drifted": len(plan.drift),
                    "imported": imported, "moved": len(plan.moves),
                    "has_changes": plan.has_changes,
                    "hourly_cost_change": plan.cost_delta, "monthly_cost_change": _monthly(plan.cost_delta),
                    "unpriced": list(plan.unpriced)},
        "partial": plan.partial,
        "warnings": [scrub(w) for w in plan.warnings],
        "drift": [drift_to_dict(d) for d in plan.drift],
        "resource_changes": [_resource(a) for a in plan.actions],
        "output_changes": _output_changes(plan),
        **guardrails.json_fields(plan),
    }


def _output_changes(plan: Plan) -> list[dict]:
    return json_list(plan)


def render_plan(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2) + "\n"
