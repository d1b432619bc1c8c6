"""The "Changes to outputs" part of every plan rendering (top-level `outputs:`)."""
from __future__ import annotations

from typing import Any

from reconciler.config.model import UNKNOWN
from reconciler.plan.model import FieldChange, Plan
from reconciler.render.values import (  # code: escaped, a value never becomes markup
    code,
    full_value,
    value,
)


def text_lines(plan: Plan) -> list[str]:
    if not plan.output_changes:
        return []
    lines = ["Changes to outputs:"]
    for c in plan.output_changes:
        if c.old is None:
            lines.append(f"  + {c.path} = {full_value(c.new, c.sensitive)}")
        elif c.new is None:
            lines.append(f"  - {c.path} = {full_value(c.old, c.sensitive)}")
        else:
            lines.append(f"  ~ {c.path}: {full_value(c.old, c.sensitive)} -> {full_value(c.new, c.sensitive)}")
    return lines + [""]


def markdown_lines(plan: Plan) -> list[str]:
    if not plan.output_changes:
        return []
    lines = ["**Changes to outputs**", "", "| output | before | after |", "|---|---|---|"]
    for c in plan.output_changes:
        before = "—" if c.old is None else code(value(c.old, c.sensitive))
        after = "—" if c.new is None else code(value(c.new, c.sensitive))
        lines.append(f"| {code(c.path)} | {before} | {after} |")
    return lines + [""]


def _json_value(v: Any, sensitive: bool) -> Any:
    if sensitive and v is not None:
        return {"sensitive": True}
    if v is UNKNOWN:
        return {"unknown": True}
    return v


def json_list(plan: Plan) -> list[dict]:
    return [{"name": c.path, "before": _json_value(c.old, c.sensitive), "after": _json_value(c.new, c.sensitive),
             "sensitive": c.sensitive} for c in plan.output_changes]


__all__ = ["text_lines", "markdown_lines", "json_list", "FieldChange"]
