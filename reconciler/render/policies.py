"""Guardrails in a plan: the policy results (above the actions in text, at the top of the
Markdown comment, `policy_results` in JSON) and what expiry and power schedules mean now.
Each renderer calls one function here, so the sections live in one place."""
from __future__ import annotations

from dataclasses import asdict

from reconciler.plan.model import Plan, PolicyResult
from reconciler.render.values import code, escape

MARK = {"pass": "ok", "deny": "DENY", "warn": "WARN", "overridden": "OVERRIDDEN"}


def _mark(r: PolicyResult) -> str:
    if r.passed:
        return MARK["pass"]
    if r.overridden is not None:
        return MARK["overridden"]
    return MARK[r.enforcement]


def _overridden(r: PolicyResult) -> str:
    o = r.overridden or {}
    return f" (overridden by {o.get('who')}: {o.get('reason')})" if r.overridden else ""


def verdict(plan: Plan) -> str | None:
    denied = plan.denied
    if not denied:
        return None
    names = ", ".join(dict.fromkeys(r.name for r in denied))
    return (f"Denied by policy: {names}. This plan cannot be applied; fix it, or apply with "
            f"--override-policy NAME --reason TEXT (recorded in the state).")


def text_lines(plan: Plan) -> list[str]:
    lines: list[str] = []
    if plan.policy_results:
        lines.append("Policies:")
        for r in plan.policy_results:
            where = f" {r.address}:" if r.address else ":"
            lines.append(f"  [{_mark(r)}] {r.name}{where} {r.message}{_overridden(r)}")
        lines.append("")
    if plan.time_notes:
        lines.append("Expiry and schedules:")
        lines.extend(f"  {n.address}: {n.text}" for n in plan.time_notes)
        lines.append("")
    said = verdict(plan)
    if said:
        lines += [said, ""]
    return lines


def markdown_lines(plan: Plan) -> list[str]:
    lines: list[str] = []
    said = verdict(plan)
    if said:
        lines += [f"> **{escape(said)}**", ""]
    if plan.policy_results:
        lines += ["**Policies**", "", "| result | policy | resource | message |", "|---|---|---|---|"]
        for r in plan.policy_results:
            lines.append(f"| {_mark(r)} | {code(r.name)} | {code(r.address) if r.address else ''} | "
                         f"{escape(r.message + _overridden(r))} |")
        lines.append("")
    if plan.time_notes:
        lines += ["**Expiry and schedules**", ""]
        lines += [f"- {code(n.address)}: {escape(n.text)}" for n in plan.time_notes]
        lines.append("")
    return lines


def json_fields(plan: Plan) -> dict:
    return {"policy_results": [asdict(r) for r in plan.policy_results],
            "denied": bool(plan.denied),
            "time_notes": [asdict(n) for n in plan.time_notes]}
