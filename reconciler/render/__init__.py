"""Plan renderings: text (terminal), markdown (pull requests), json (machines)."""
from __future__ import annotations

import importlib

from reconciler.plan.model import Plan


def render(plan: Plan, fmt: str, *, color: bool = False) -> str:
    if fmt == "text":
        from reconciler.render.text import render_plan
        return render_plan(plan, color=color)
    module = importlib.import_module(f"reconciler.render.{'markdown' if fmt == 'markdown' else 'json'}")
    return module.render_plan(plan)
