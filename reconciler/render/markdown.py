"""The plan as pull-request comments: summary tables (totals and per kind), warnings, one
collapsible section per resource, split into pages of at most 65,536 characters (GitHub's
limit for a comment) that together name every resource.

Every value, reason and warning is escaped (`escape`): a description holding a backtick,
`<img ...>` or `<!-- -->` shows as those characters and never becomes markup, a mention
or an HTML comment in the pull request.
"""
from __future__ import annotations

import json
import re
from collections import Counter

from reconciler.config.sensitivity import scrub
from reconciler.plan.model import Action, ActionType, Drift, FieldChange, Plan
from reconciler.render import policies as guardrails
from reconciler.render.outputs import markdown_lines
from reconciler.render.text import (
    UNPRICED_SHOWN,
    headline,
    refresh_only_line,
    summary_line,
)
from reconciler.render.values import MAX_VALUE, code, escape, full_value, money, value

MARKER = "<!-- reconciler-plan -->"
GITHUB_LIMIT = 65536
HEAD_WARNINGS = 20000  # characters of warnings on the first page; the rest stay in their sections
ICONS = {ActionType.CREATE: "➕ create", ActionType.UPDATE: "🔧 update", ActionType.REPLACE: "♻️ replace",
         ActionType.DELETE: "🗑️ destroy", ActionType.FORGET: "👋 forget", ActionType.RELEASE: "🔓 release",
         ActionType.ORPHAN: "🪁 orphan"}
def page_marker(number: int, total: int) -> str:
    return f"<!-- reconciler-plan page {number}/{total} -->"


def _remote(a: Action | Drift) -> str:
    parts = ([f"id {code(a.remote_id)}"] if a.remote_id else []) + \
        ([f"name {code(a.remote_name)}"] if a.remote_name else [])
    return (" · " + " · ".join(parts)) if parts else ""


def _label(a: Action) -> str:
    return "📥 import" if a.imported else "➕ adopt" if a.adopt else ICONS[a.type]


def _rows(c: FieldChange, longs: list[tuple[str, str]]) -> list[str]:
    flag = " ⚠️ forces replacement" if c.forces_replacement else ""
    if c.items:
        rows = []
        for i in c.items:
            where = c.path + ("" if not i.path or i.path.startswith("[") else ".") + i.path
            op = {"add": "added", "remove": "removed", "change": "changed"}[i.op]
            before = "—" if i.op == "add" else code(value(i.old))
            after = "—" if i.op == "remove" else code(value(i.new))
            rows.append(f"| {code(where)} {op}{flag} | {before} | {after} |")
        return rows

    def cell(v, sensitive: bool, side: str) -> str:
        whole = full_value(v, sensitive)
        if len(whole) > MAX_VALUE:  # shown whole below the table, collapsed
            longs.append((f"{c.path} ({side})", whole))
            return f"{code(value(v, sensitive))} (whole value below)"
        return code(whole)
    return [f"| {code(c.path)}{flag} | {cell(c.old, c.sensitive, 'before')} | {cell(c.new, c.sensitive, 'after')} |"]


def _long_value(label: str, text: str) -> str:
    try:  # JSON objects and lists read better indented; a string as itself
        parsed = json.loads(text)
        text = parsed if isinstance(parsed, str) else json.dumps(parsed, indent=2, sort_keys=True)
    except ValueError:
        pass
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f"<details><summary>{code(label)}: {len(text):,} characters</summary>\n\n"
            f"<pre>{body}</pre>\n\n</details>")


def _section(a: Action) -> list[str]:
    lines = [f"<details><summary>{code(a.address)} — {_label(a)}{_remote(a)}</summary>", ""]
    if a.type.removes or a.adopt:
        lines.append(f"**{escape(headline(a))}**")
        lines.append("")
    for reason in a.reasons:
        lines.append(f"- {escape(scrub(reason))}")
    longs: list[tuple[str, str]] = []
    if a.changes and not a.type.removes:
        lines += ["", "| field | before | after |", "|---|---|---|"]
        for c in a.changes:
            lines += _rows(c, longs)
        for label, text in longs:
            lines += ["", _long_value(label, text)]
    if a.cost_before is not None or a.cost_after is not None:
        lines += ["", f"Cost: {money(a.cost_before)} → {money(a.cost_after)}"]
    if a.effect and not a.type.removes:
        lines += ["", f"_{escape(a.effect)}_"]
    for w in a.warnings:
        lines += ["", f"> ⚠️ {escape(scrub(w))}"]
    lines += ["", "</details>", ""]
    return lines


def _drift_section(d: Drift) -> list[str]:
    what = "🗑️ deleted outside reconciler" if d.gone else "⚠️ changed outside reconciler"
    lines = [f"<details><summary>{code(d.address)} — {what}{_remote(d)}</summary>", ""]
    longs: list[tuple[str, str]] = []
    if d.changes:
        lines += ["| field | last applied | live |", "|---|---|---|"]
        for c in d.changes:
            lines += _rows(c, longs)
        for label, text in longs:
            lines += ["", _long_value(label, text)]
    lines += ["", "</details>", ""]
    return lines


def _table(plan: Plan) -> list[str]:
    """Totals, and one row per kind with something to do."""
    types = [t for t in (ActionType.CREATE, ActionType.UPDATE, ActionType.REPLACE, ActionType.DELETE)]
    types += [t for t in (ActionType.FORGET, ActionType.RELEASE, ActionType.ORPHAN) if plan.count(t)]
    names = {ActionType.CREATE: "add", ActionType.UPDATE: "change", ActionType.REPLACE: "replace",
             ActionType.DELETE: "destroy", ActionType.FORGET: "forget", ActionType.RELEASE: "release",
             ActionType.ORPHAN: "orphan"}
    delta = plan.cost_delta
    lines = ["| " + " | ".join(names[t] for t in types) + " | cost change |",
             "|" + "---:|" * (len(types) + 1),
             "| " + " | ".join(str(plan.count(t)) for t in types) + f" | {money(delta, sign=True) if delta else '—'} |",
             ""]
    per_kind: dict[str, Counter] = {}
    for a in plan.actions:
        if a.is_change:
            per_kind.setdefault(a.kind, Counter())[a.type] += 1
    if len(per_kind) > 1 or sum(sum(c.values()) for c in per_kind.values()) > 1:
        lines += ["| kind | " + " | ".join(names[t] for t in types) + " |",
                  "|---|" + "---:|" * len(types)]
        for kind in sorted(per_kind):
            lines.append(f"| {code(kind)} | " + " | ".join(str(per_kind[kind][t]) for t in types) + " |")
        lines.append("")
    return lines


def _head(plan: Plan, title: str) -> list[str]:
    head = [f"### {escape(title)}", ""] + guardrails.markdown_lines(plan)
    changes = [a for a in plan.actions if a.is_change]
    if plan.refresh_only:
        head += [f"**{escape(refresh_only_line(plan))}**", ""]
    elif plan.changes_outputs_only:
        head += ["**No changes to resources.** Apply to record the new output values.", ""]
    elif not changes and not plan.moves:
        head += ["**No changes.** The live services match the manifests.", ""]
    else:
        head += [f"**{escape(summary_line(plan))}**", ""] + _table(plan)
        head += [f"- {code(old)} has moved to {code(new)}" for old, new in plan.moves] + ([""] if plan.moves else [])
    warnings = [escape(scrub(w)) for w in plan.warnings]
    if plan.unpriced:
        names = ", ".join(code(a) for a in plan.unpriced[:UNPRICED_SHOWN])
        more = len(plan.unpriced) - UNPRICED_SHOWN
        warnings.append(f"No price known for {names}{f' and {more:,} more' if more > 0 else ''} "
                        "(not in the cost change)")
    per_resource = [f"{code(a.address)}: {escape(scrub(w))}" for a in changes for w in a.warnings]
    room = HEAD_WARNINGS - sum(len(w) for w in warnings)
    for i, w in enumerate(per_resource):  # each is in its resource's section too
        if len(w) > room:
            warnings.append(f"{len(per_resource) - i:,} more warnings are in their resources' sections below")
            break
        warnings.append(w)
        room -= len(w)
    if warnings:
        head += ["**Warnings**", ""] + [f"- {w}" for w in warnings] + [""]
    return head + markdown_lines(plan)


def render_pages(plan: Plan, *, max_chars: int = GITHUB_LIMIT, title: str | None = None) -> list[str]:
    """The plan as comments of at most `max_chars` each: the first holds the summary and
    the warnings, each resource's section is on exactly one page."""
    return _paginate(plan, max_chars, title)[0]


def _paginate(plan: Plan, max_chars: int, title: str | None) -> tuple[list[str], list[int]]:
    title = title or "reconciler plan"
    room = max_chars - 200  # the page marker, the part line and the continuation note
    head = "\n".join(_head(plan, title)) + "\n"
    sections = ["\n".join(_drift_section(d)) for d in plan.drift]
    sections += ["\n".join(_section(a)) for a in plan.actions if a.is_change]
    pages: list[str] = [head]
    per_page = [0]
    for section in sections:
        if len(section) > room - len(head):  # one resource larger than a page: cut inside it
            section = section[:room - len(head) - 300].rsplit("\n", 1)[0] + (
                "\n\n_This section was cut to fit a comment: run `reconciler show PLANFILE` for all of it._"
                "\n\n</details>\n")
        if len(pages[-1]) + len(section) > room:
            pages.append("")
            per_page.append(0)
        pages[-1] += section
        per_page[-1] += 1
    total = len(pages)
    out = []
    for number, body in enumerate(pages, 1):
        top = MARKER if number == 1 else f"### {escape(title)} (part {number} of {total})\n"
        text = f"{top}\n{page_marker(number, total)}\n{body}"
        if number < total:
            text += f"\n_Continued in part {number + 1} of {total}._\n"
        out.append(text)
    return out, per_page


def render_plan(plan: Plan, *, max_chars: int = GITHUB_LIMIT, title: str | None = None) -> str:
    """One comment: the whole plan when it fits, else its first page and a note."""
    pages, per_page = _paginate(plan, max_chars, title)
    if len(pages) == 1:
        return pages[0]
    rest = sum(per_page[1:])
    return (pages[0].rsplit("\n_Continued", 1)[0] +
            f"\n_{rest:,} more resources did not fit in one comment: "
            "`reconciler show PLANFILE --format markdown --split DIR` writes them all as pages._\n")


PAGES_MARKER = ".reconciler-pages"  # in a --split folder: the pages the last run wrote


def write_pages(plan: Plan, folder, *, max_chars: int = GITHUB_LIMIT) -> list:
    """`show --split DIR`: DIR/001.md, 002.md, ... Only into an empty folder or one holding
    only the pages an earlier run wrote (named in its marker file), which are replaced so
    the folder holds exactly this plan; nothing else is ever removed or overwritten."""
    from pathlib import Path

    from reconciler.errors import PlanError

    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise PlanError(f"--split {folder}: not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / PAGES_MARKER
        listed = marker.read_text(encoding="utf-8").split() if marker.is_file() else []
        ours = {n for n in listed if re.fullmatch(r"[0-9]{3,}\.md", n)}  # never a path elsewhere
        foreign = sorted(p.name for p in folder.iterdir()
                         if p.name != PAGES_MARKER and not (p.name in ours and p.is_file() and not p.is_symlink()))
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise PlanError(f"--split {folder}: the folder holds files this command did not write ({shown}); "
                            "give an empty or new folder")
        for name in ours:
            (folder / name).unlink(missing_ok=True)
        written = []
        for number, page in enumerate(render_pages(plan, max_chars=max_chars), 1):
            path = folder / f"{number:03d}.md"
            path.write_text(page, encoding="utf-8")
            written.append(path)
        marker.write_text("".join(f"{p.name}\n" for p in written), encoding="utf-8")
    except OSError as e:
        raise PlanError(f"--split {folder}: {e.strerror or e.__class__.__name__}") from None
    return written
