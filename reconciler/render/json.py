"""The JSON plan: documented and versioned by schemas/plan.schema.json.

Like OpenTofu's JSON plan, a replace is listed as actions ["delete", "create"]. Sensitive
values are replaced by {"sensitive": true}; values known only after apply by
{"unknown": true}.
"""
from __future__ import annotations

import json
from typing import Any

from reconciler.model import UNKNOWN, Action, ActionType, Plan

PLAN_FORMAT_VERSION = "1.0"
_ACTIONS = {ActionType.CREATE: ["create"], ActionType.UPDATE: ["update"],
            ActionType.REPLACE: ["delete", "create"], ActionType.DELETE: ["delete"], ActionType.NOOP: ["no-op"]}


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


def _resource(a: Action) -> dict:
    return {
        "address": a.address, "kind": a.kind, "actions": _ACTIONS[a.type], "mode": a.mode,
        "remote_id": a.remote_id, "reasons": list(a.reasons), "warnings": list(a.warnings),
        "depends_on": list(a.depends_on),
        "changes": [{"path": c.path, "before": _value(c.old, c.sensitive), "after": _value(c.new, c.sensitive),
                     "forces_replacement": c.forces_replacement, "sensitive": c.sensitive} for c in a.changes],
        "cost": None if a.cost_before is None and a.cost_after is None else
        {"hourly_before": a.cost_before, "hourly_after": a.cost_after},
    }


def plan_to_dict(plan: Plan) -> dict:
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "destroy": plan.destroy, "refresh_only": plan.refresh_only,
        "summary": {"add": plan.count(ActionType.CREATE), "change": plan.count(ActionType.UPDATE),
                    "replace": plan.count(ActionType.REPLACE), "destroy": plan.count(ActionType.DELETE),
                    "unchanged": plan.count(ActionType.NOOP), "has_changes": plan.has_changes,
                    "hourly_cost_change": plan.cost_delta},
        "warnings": list(plan.warnings),
        "resource_changes": [_resource(a) for a in plan.actions],
        "output_changes": _output_changes(plan),
    }


def _output_changes(plan: Plan) -> list[dict]:
    from reconciler.render.outputs import json_list
    return json_list(plan)


def render_plan(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2) + "\n"
