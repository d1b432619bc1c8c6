"""The text plan, in the style Terraform users know: + create, ~ update, -/+ replace,
- destroy; only changed fields, `old -> new`; a closing `Plan: ...` line."""
from __future__ import annotations

import json
from typing import Any

from reconciler.model import UNKNOWN, Action, ActionType, FieldChange, Plan

COLORS = {ActionType.CREATE: "32", ActionType.UPDATE: "33", ActionType.REPLACE: "35",
          ActionType.DELETE: "31", ActionType.NOOP: "0"}
MAX_VALUE = 120
MODE_WORDS = {
    "release": "will be released: the properties, tags and alias we set are removed; the object is kept",
    "orphan": "will be orphaned: forgotten by reconciler; the object is kept",
    "forget": "is already gone: only its state entry is removed",
    "adopt": "will be adopted: it exists already and is taken under management",
}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code != "0" else text


def value(v: Any, sensitive: bool = False) -> str:
    if sensitive and v is not None:
        return "(sensitive)"
    if v is UNKNOWN:
        return "(known after apply)"
    if v is None:
        return "null"
    text = v if isinstance(v, str) and "\n" not in v else json.dumps(v, sort_keys=True, default=str)
    text = json.dumps(text) if isinstance(v, str) else text
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 12] + f"... ({len(text)} chars)"


def _headline(a: Action) -> str:
    if a.type is ActionType.DELETE and a.mode in MODE_WORDS:
        verb = MODE_WORDS[a.mode]
    elif a.type is ActionType.CREATE and a.mode == "adopt":
        verb = MODE_WORDS["adopt"]
    else:
        verb = {ActionType.CREATE: "will be created", ActionType.UPDATE: "will be updated in place",
                ActionType.REPLACE: "must be replaced", ActionType.DELETE: "will be destroyed"}[a.type]
    return f"# {a.address} {verb}"


def _change_line(c: FieldChange, atype: ActionType) -> str:
    mark = "  # forces replacement" if c.forces_replacement else ""
    if atype is ActionType.CREATE and c.old is None:
        return f"      + {c.path} = {value(c.new, c.sensitive)}"
    if c.new is None:
        return f"      - {c.path} = {value(c.old, c.sensitive)}{mark}"
    return f"      ~ {c.path}: {value(c.old, c.sensitive)} -> {value(c.new, c.sensitive)}{mark}"


def _cost(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}/h"


def render_plan(plan: Plan, *, color: bool = False) -> str:
    lines: list[str] = []
    changes = [a for a in plan.actions if a.is_change]
    if changes:
        lines.append("Reconciler will perform these actions:")
        lines.append("")
    for a in changes:
        lines.append(_paint(_headline(a), COLORS[a.type], color))
        for reason in a.reasons:
            lines.append(f"  # ({reason})")
        symbol = a.type.value if not (a.type is ActionType.CREATE and a.mode == "adopt") else "+"
        ident = f" [id={a.remote_id}]" if a.remote_id else ""
        lines.append(_paint(f"  {symbol} {a.address}{ident}", COLORS[a.type], color))
        if a.type is not ActionType.DELETE:
            for c in a.changes:
                lines.append(_change_line(c, a.type))
        if a.cost_before is not None or a.cost_after is not None:
            lines.append(f"      cost: {_cost(a.cost_before)} -> {_cost(a.cost_after)}")
        for w in a.warnings:
            lines.append(_paint(f"  ! {w}", "33", color))
        lines.append("")
    from reconciler.render.outputs import text_lines
    lines.extend(text_lines(plan))
    for w in plan.warnings:
        lines.append(_paint(f"Warning: {w}", "33", color))
    if plan.cost_delta:
        sign = "+" if plan.cost_delta > 0 else "-"
        lines.append(f"Hourly cost change: {sign}${abs(plan.cost_delta):,.2f}/h")
    if not changes:
        lines.append("No changes. Your infrastructure matches the configuration.")
    else:
        add = plan.count(ActionType.CREATE, ActionType.REPLACE)
        change = plan.count(ActionType.UPDATE)
        destroy = plan.count(ActionType.DELETE, ActionType.REPLACE)
        lines.append(f"Plan: {add} to add, {change} to change, {destroy} to destroy.")
    return "\n".join(lines) + "\n"


def render_apply_line(action: Action, status: str, seconds: float | None = None, *, color: bool = False) -> str:
    verbs = {ActionType.CREATE: ("Creating", "Creation"), ActionType.UPDATE: ("Modifying", "Modifications"),
             ActionType.REPLACE: ("Replacing", "Replacement"), ActionType.DELETE: ("Destroying", "Destruction"),
             ActionType.NOOP: ("Reading", "Read")}
    doing, done = verbs[action.type]
    if status == "start":
        return f"{action.address}: {doing}..."
    took = f" after {seconds:.0f}s" if seconds is not None else ""
    if status == "done":
        return _paint(f"{action.address}: {done} complete{took}", "32", color)
    if status == "skipped":
        return _paint(f"{action.address}: skipped", "33", color)
    return _paint(f"{action.address}: {done} FAILED{took}", "31", color)
