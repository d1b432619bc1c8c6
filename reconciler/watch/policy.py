"""Which part of a plan `watch --auto-apply` may run, and why the rest waits.

Held back, with what depends on them:
* a delete or replace of a resource protected by prevent_destroy (the manual apply
  refuses the whole plan; the watch holds back only that resource and goes on);
* with `--auto-apply=changes`, everything but in-place updates: it heals what drifted
  and never makes, deletes or replaces an object (a create waits for a person too: a
  console-deleted object may have been deleted on purpose);
* a resource backing off after failures (backoff.py).

What depends on a held create or update waits with it (it may need its outputs); what
a held delete uses is not deleted either (the API would refuse while it is in use).
"""
from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine import graph
from reconciler.engine.planner import PlanResult, Step
from reconciler.plan.model import ActionType

ALL, CHANGES = "all", "changes"


@dataclass
class Selection:
    result: PlanResult  # the plan to hand to the applier
    held: dict[str, str]  # address -> why it is not applied now (only changes)


def protected(step: Step) -> bool:
    """Would this step destroy a prevent_destroy resource? (as the planner decides it)"""
    a = step.action
    protect = bool((step.resource and step.resource.lifecycle.prevent_destroy)
                   or (step.prior and step.prior.protected))
    if a.type is ActionType.REPLACE:
        return protect
    return a.type.removes and a.type is not ActionType.FORGET and bool(step.prior and step.prior.protected)


def select(result: PlanResult, mode: str, backing_off: dict[str, float]) -> Selection:
    held: dict[str, str] = {}
    steps = result.steps
    for address, step in steps.items():
        a = step.action
        if not a.is_change:
            continue
        if protected(step):
            held[address] = f"prevent_destroy protects it and the plan would {a.type.verb} it"
        elif mode == CHANGES and a.type is not ActionType.UPDATE:
            held[address] = (f"--auto-apply=changes makes in-place updates only; it never creates, deletes, "
                             f"forgets, releases or replaces (the plan would {a.type.verb} it)")
        elif address in backing_off:
            held[address] = f"backing off after failures; next try in {backing_off[address]:.1f}s"
    g = result.graph
    dropped = set(held)
    for address in held:
        if steps[address].action.type.removes:
            users = graph.dependencies_of(g, [address]) - {address}
            dropped |= {d for d in users if d in steps and steps[d].action.type.removes}
        else:
            dropped |= graph.dependants(g, [address])
    for address in dropped - set(held):
        if steps.get(address) is not None and steps[address].action.is_change:
            held[address] = "waits for " + ", ".join(sorted(
                h for h in held if h in graph.dependencies_of(g, [address]) | graph.dependants(g, [address])))
    kept = {a: s for a, s in steps.items() if a not in dropped}
    return Selection(PlanResult(plan=result.plan, steps=kept, graph=g, errors=[]), held)


def unexplained_errors(result: PlanResult, held: dict[str, str]) -> list[str]:
    """Plan errors other than the prevent_destroy refusals the selection already holds back."""
    return [e for e in result.errors
            if not any(e.startswith((f"{a} ", f"{a}:")) for a, why in held.items() if "prevent_destroy" in why)]
