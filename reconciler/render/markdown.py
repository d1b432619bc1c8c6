"""The plan as a pull-request comment: summary table, one collapsible section per
resource, warnings; kept under GitHub's 65,536-character limit with a note when cut."""
from __future__ import annotations

from reconciler.model import Action, ActionType, Plan
from reconciler.render.text import MODE_WORDS, value

MARKER = "<!-- reconciler-plan -->"
ICONS = {ActionType.CREATE: "➕ create", ActionType.UPDATE: "🔧 update", ActionType.REPLACE: "♻️ replace",
         ActionType.DELETE: "🗑️ destroy"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(a: Action) -> str:
    label = ICONS[a.type]
    if a.mode in MODE_WORDS and a.type in (ActionType.DELETE, ActionType.CREATE):
        label += f" ({a.mode})"
    lines = [f"<details><summary><code>{a.address}</code> — {label}</summary>", ""]
    for reason in a.reasons:
        lines.append(f"- {_cell(reason)}")
    if a.changes and a.type is not ActionType.DELETE:
        lines += ["", "| field | before | after |", "|---|---|---|"]
        for c in a.changes:
            flag = " ⚠️ forces replacement" if c.forces_replacement else ""
            lines.append(f"| `{c.path}`{flag} | `{_cell(value(c.old, c.sensitive))}` | "
                         f"`{_cell(value(c.new, c.sensitive))}` |")
    if a.cost_before is not None or a.cost_after is not None:
        lines += ["", f"Hourly cost: {_money(a.cost_before)} → {_money(a.cost_after)}"]
    for w in a.warnings:
        lines.append(f"\n> ⚠️ {_cell(w)}")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _money(v: float | None) -> str:
    return "—" if v is None else f"${v:,.2f}/h"


def render_plan(plan: Plan, *, max_chars: int = 65000, title: str | None = None) -> str:
    changes = [a for a in plan.actions if a.is_change]
    head = [MARKER, f"### {title or 'reconciler plan'}", ""]
    from reconciler.render.outputs import markdown_lines
    if not changes:
        head.append("**No changes.** The live services match the manifests.")
        return "\n".join(head + [""] + markdown_lines(plan)) + "\n"
    delta = plan.cost_delta
    head += ["| add | change | replace | destroy | hourly cost change |", "|---:|---:|---:|---:|---:|",
             f"| {plan.count(ActionType.CREATE)} | {plan.count(ActionType.UPDATE)} | "
             f"{plan.count(ActionType.REPLACE)} | {plan.count(ActionType.DELETE)} | "
             f"{'—' if delta is None else ('+' if delta >= 0 else '-') + f'${abs(delta):,.2f}/h'} |", ""]
    warnings = list(plan.warnings) + [f"`{a.address}`: {w}" for a in changes for w in a.warnings]
    warnings += [f"`{a.address}` {MODE_WORDS[a.mode]}" for a in changes
                 if a.type is ActionType.DELETE and a.mode in ("release", "orphan")]
    if warnings:
        head += ["**Warnings**", ""] + [f"- {_cell(w)}" for w in warnings] + [""]
    head += markdown_lines(plan)
    body = "\n".join(head) + "\n"
    footer_room = 200
    shown = 0
    for a in changes:
        section = _section(a)
        if len(body) + len(section) + footer_room > max_chars:
            break
        body += section
        shown += 1
    if shown < len(changes):
        body += (f"\n_The comment was cut to stay under {max_chars:,} characters: {len(changes) - shown} more "
                 "resources are not shown. Run `reconciler show PLANFILE` for the whole plan._\n")
    return body
