"""The text plan, in the style Terraform users know: + create, ~ update, -/+ replace,
- destroy, . forget, < release, o orphan; only changed fields, `old -> new`, and inside a
list or nested value only the items that changed; a closing `Plan: ...` line. Nothing is
cut: a nested value shows field by field, a long string whole (what a reviewer approves
is what they saw)."""
from __future__ import annotations

import json
from typing import Iterator

from reconciler.config.terminal import shown
from reconciler.plan.model import (
    Action,
    ActionType,
    Drift,
    FieldChange,
    ItemChange,
    Plan,
)
from reconciler.render import policies as guardrails
from reconciler.render.outputs import text_lines
from reconciler.render.values import full_value, money

COLORS = {ActionType.CREATE: "32", ActionType.UPDATE: "33", ActionType.REPLACE: "35",
          ActionType.DELETE: "31", ActionType.FORGET: "36", ActionType.RELEASE: "36",
          ActionType.ORPHAN: "36", ActionType.NOOP: "0"}
UNPRICED_SHOWN = 50  # resources named on the "No price known" line; JSON lists them all
HEADLINES = {ActionType.CREATE: "will be created", ActionType.UPDATE: "will be updated in place",
             ActionType.REPLACE: "must be replaced", ActionType.DELETE: "will be destroyed",
             ActionType.FORGET: "will be forgotten", ActionType.RELEASE: "will be released",
             ActionType.ORPHAN: "will be orphaned", ActionType.NOOP: "is up to date"}
ADOPT_HEADLINE = "will be adopted: it exists already and is taken under management"
# the closing count: (words, action types); replace counts as an add and a destroy
COUNTS = (("to add", (ActionType.CREATE, ActionType.REPLACE)), ("to change", (ActionType.UPDATE,)),
          ("to destroy", (ActionType.DELETE, ActionType.REPLACE)), ("to forget", (ActionType.FORGET,)),
          ("to release", (ActionType.RELEASE,)), ("to orphan", (ActionType.ORPHAN,)))
ALWAYS_COUNTED = 3  # add, change, destroy always; forget, release, orphan when there are some


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code != "0" else text


IMPORT_HEADLINE = "will be imported"


def headline(a: Action) -> str:
    """What happens to the resource, in words, with the kind's words for a removal."""
    verb = IMPORT_HEADLINE if a.imported else ADOPT_HEADLINE if a.adopt else HEADLINES[a.type]
    return f"{verb}: {a.effect}" if a.effect and a.type.removes else verb


def remote(a: Action | Drift) -> str:
    """The live object: ` [id=..., name="..."]`, or nothing for an object not made yet."""
    parts = ([f"id={a.remote_id}"] if a.remote_id else []) + \
        ([f"name={json.dumps(a.remote_name)}"] if a.remote_name else [])
    return f" [{', '.join(parts)}]" if parts else ""


def counts(plan: Plan) -> list[tuple[str, int]]:
    """An import counts as one, not as an add; moves count on their own."""
    imported = sum(1 for a in plan.actions if a.imported)
    out = [(words, plan.count(*types) - (imported if words == "to add" else 0)) for words, types in COUNTS]
    out += [("to import", imported), ("moved", len(plan.moves))]
    return out[:ALWAYS_COUNTED] + [(w, n) for w, n in out[ALWAYS_COUNTED:] if n]


def moved_line(a: Action) -> str:
    return f"# {a.moved_from} has moved to {a.address}"


def summary_line(plan: Plan) -> str:
    return "Plan: " + ", ".join(f"{n} {w}" for w, n in counts(plan)) + "."


INLINE_LIST = 80  # a list of plain values longer than this goes one item a line


def _plain(v: object) -> bool:
    return not isinstance(v, (dict, list)) or not v


def assign(mark: str, name: str, v: object, sensitive: bool = False, indent: str = "", suffix: str = "") -> list[str]:
    """`+ name = value`, a mapping or a list of mappings field by field, Terraform's way."""
    if sensitive or _plain(v):
        return [f"{indent}{mark} {name} = {full_value(v, sensitive)}{suffix}"]
    if isinstance(v, list) and all(_plain(i) for i in v):
        inline = "[" + ", ".join(full_value(i) for i in v) + "]"
        if len(inline) <= INLINE_LIST:
            return [f"{indent}{mark} {name} = {inline}{suffix}"]
        return ([f"{indent}{mark} {name} = [{suffix}"] + [f"{indent}    {full_value(i)}," for i in v]
                + [f"{indent}  ]"])
    return [f"{indent}{mark} {name} = {_open(v)}{suffix}"] + _inside(mark, v, indent) + [f"{indent}  {_close(v)}"]


def _open(v: object) -> str:
    return "{" if isinstance(v, dict) else "["


def _close(v: object) -> str:
    return "}" if isinstance(v, dict) else "]"


def _inside(mark: str, v: object, indent: str) -> list[str]:
    inner = indent + "    "
    if isinstance(v, dict):
        width = max(len(str(k)) for k in v)
        lines: list[str] = []
        for k in sorted(v, key=str):
            one_line = _plain(v[k]) or isinstance(v[k], list) and all(_plain(i) for i in v[k])
            lines += assign(mark, str(k).ljust(width) if one_line else str(k), v[k], indent=inner)
        return lines
    lines = []
    for item in v if isinstance(v, list) else ():
        if _plain(item):
            lines.append(f"{inner}{full_value(item)},")
        else:
            lines += [f"{inner}{_open(item)}"] + _inside(mark, item, inner) + [f"{inner}{_close(item)},"]
    return lines


def item_line(path: str, item: ItemChange) -> str:
    """One changed item inside a list or nested value, on one line (Markdown's cells)."""
    where = f"{path}{'' if not item.path or item.path.startswith('[') else '.'}{item.path}"
    if item.op == "add":
        return f"+ {where} = {full_value(item.new)}" if item.path else f"+ {full_value(item.new)}"
    if item.op == "remove":
        return f"- {where} = {full_value(item.old)}" if item.path else f"- {full_value(item.old)}"
    return f"~ {where}: {full_value(item.old)} -> {full_value(item.new)}"


def _item_lines(path: str, item: ItemChange, indent: str) -> list[str]:
    where = f"{path}{'' if not item.path or item.path.startswith('[') else '.'}{item.path}"
    if item.op in ("add", "remove") and item.path:
        mark, v = ("+", item.new) if item.op == "add" else ("-", item.old)
        return assign(mark, where, v, indent=indent)
    if item.op == "change" and not (_plain(item.old) and _plain(item.new)):
        return assign("-", where, item.old, indent=indent) + assign("+", where, item.new, indent=indent)
    return [f"{indent}{item_line(path, item)}"]


def _change_lines(c: FieldChange, atype: ActionType) -> list[str]:
    mark = "  # forces replacement" if c.forces_replacement else ""
    if atype is ActionType.CREATE and c.old is None:
        return assign("+", c.path, c.new, c.sensitive, "      ")
    if c.new is None:
        return assign("-", c.path, c.old, c.sensitive, "      ", mark)
    if c.items:
        added = sum(1 for i in c.items if i.op == "add")
        removed = sum(1 for i in c.items if i.op == "remove")
        changed = len(c.items) - added - removed
        tally = ", ".join(f"{n} {w}" for n, w in ((added, "added"), (removed, "removed"), (changed, "changed")) if n)
        lines = [f"      ~ {c.path}: {tally}{mark}"]
        for i in c.items:
            lines += _item_lines(c.path, i, "          ")
        return lines
    if c.old is None:
        return assign("+", c.path, c.new, c.sensitive, "      ", mark)
    if not c.sensitive and not (_plain(c.old) and _plain(c.new)):
        return assign("-", c.path, c.old, indent="      ", suffix=mark) + assign("+", c.path, c.new, indent="      ")
    return [f"      ~ {c.path}: {full_value(c.old, c.sensitive)} -> {full_value(c.new, c.sensitive)}{mark}"]


def drift_lines(drift: list[Drift], color: bool = False, refresh_only: bool = True) -> list[str]:
    if not drift:
        return []
    lines = ["Objects changed outside reconciler (last applied -> live):", ""] if refresh_only else [
        "Note: Objects have changed outside reconciler since the last apply (last applied -> live);",
        "the actions below are planned against what is live now:", ""]
    for d in drift:
        if d.gone:
            lines.append(_paint(f"# {d.address}{remote(d)} was deleted outside reconciler", "31", color))
        else:
            lines.append(_paint(f"# {d.address}{remote(d)} changed outside reconciler", "33", color))
            for c in d.changes:
                lines.extend(_change_lines(c, ActionType.UPDATE))
        lines.append("")
    return lines


def render_plan(plan: Plan, *, color: bool = False) -> str:
    return "\n".join(plan_lines(plan, color=color)) + "\n"


def plan_lines(plan: Plan, *, color: bool = False) -> Iterator[str]:
    """The plan's text a line at a time (an apply of 100,000 actions prints it without
    holding it whole)."""
    yield from guardrails.text_lines(plan)
    yield from drift_lines(plan.drift, color, plan.refresh_only)
    changes = [a for a in plan.actions if a.is_change or a.moved_from]
    if changes:
        yield "Reconciler will perform these actions:"
        yield ""
    for a in changes:
        if a.moved_from:
            yield moved_line(a)
            if not a.is_change:
                yield ""
                continue
        yield _paint(f"# {a.address} {headline(a)}", COLORS[a.type], color)
        for reason in a.reasons:
            yield f"  # ({shown(reason)})"
        yield _paint(f"  {a.type.value} {a.address}{remote(a)}", COLORS[a.type], color)
        if not a.type.removes:
            for c in a.changes:
                yield from _change_lines(c, a.type)
        if a.cost_before is not None or a.cost_after is not None:
            yield f"      cost: {money(a.cost_before)} -> {money(a.cost_after)}"
        if a.effect and not a.type.removes:
            yield f"  # ({a.effect})"
        for w in a.warnings:
            yield _paint(f"  ! {shown(w)}", "33", color)
        yield ""
    yield from text_lines(plan)
    for w in plan.warnings:
        yield _paint(f"Warning: {shown(w)}", "33", color)
    if plan.cost_delta:
        yield f"Cost change: {money(plan.cost_delta, sign=True)}"
    if plan.unpriced:
        more = len(plan.unpriced) - UNPRICED_SHOWN
        yield (f"No price known for: {', '.join(plan.unpriced[:UNPRICED_SHOWN])}"
               f"{f' and {more:,} more' if more > 0 else ''} (not in the cost change)")
    if plan.refresh_only:
        yield refresh_only_line(plan)
    elif plan.changes_outputs_only:
        yield "No changes to resources. Apply to record the new output values."
    elif not changes:
        yield "No changes. Your infrastructure matches the configuration."
    else:
        yield summary_line(plan)


def refresh_only_line(plan: Plan) -> str:
    if not plan.drift:
        return "No drift. The live objects match what was last applied."
    n = len(plan.drift)
    return (f"Drift: {n} resource{'s' if n != 1 else ''} changed outside reconciler. This is a refresh-only plan: "
            "`reconciler apply --refresh-only` records the live values in the state and changes nothing "
            "in the services.")


def render_apply_line(action: Action, status: str, seconds: float | None = None, *, color: bool = False) -> str:
    verbs = {ActionType.CREATE: ("Creating", "Creation"), ActionType.UPDATE: ("Modifying", "Modifications"),
             ActionType.REPLACE: ("Replacing", "Replacement"), ActionType.DELETE: ("Destroying", "Destruction"),
             ActionType.FORGET: ("Forgetting", "Forgetting"), ActionType.RELEASE: ("Releasing", "Release"),
             ActionType.ORPHAN: ("Orphaning", "Orphaning"), ActionType.NOOP: ("Reading", "Read")}
    doing, done = verbs[action.type]
    if action.adopt:
        doing, done = "Adopting", "Adoption"
    if status == "start":
        return f"{action.address}: {doing}..."
    took = f" after {seconds:.0f}s" if seconds is not None else ""
    if status == "done":
        return _paint(f"{action.address}: {done} complete{took}", "32", color)
    if status == "skipped":
        return _paint(f"{action.address}: skipped", "33", color)
    return _paint(f"{action.address}: {done} FAILED{took}", "31", color)
