"""Every plan evaluates every policy (config/policies.py) over the plan as data.

    budget   the hourly total of everything managed after the plan (schedules averaged
             over a week) and the monthly increase; prices the catalogue leaves out
    gpus     each VM's GPU names and count from the VALDI catalogue (Kind.gpus)
    require  keys every resource of a kind has after the change
    protect  no delete or replace
    deny_if  a CEL expression over each change: action, kind, address, before, after, cost
    ttl      `expires:` within a maximum

A policy that passes is one result (address None); one that fails is one result per
resource it fails on (or one for the plan, for totals). A failed `deny` result not
overridden makes the plan denied: exit 3, and apply refuses it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

from reconciler.config import durations
from reconciler.config.hints import did_you_mean
from reconciler.config.model import UNKNOWN
from reconciler.config.policies import Policy, duplicates
from reconciler.config.sensitivity import field_names, hidden_leaves, scrub_values
from reconciler.engine.planner import PlanResult, Step
from reconciler.errors import Problem
from reconciler.plan.model import HOURS_PER_MONTH, ActionType, PolicyResult
from reconciler.providers.contract import HasGpus, Kind, KindContext, Priced

# require: the spec field each kind of key lives in
REQUIRE_FIELDS = {"properties": "properties", "tags": "tags", "metadata": "custom_metadata"}


def problems(policies: list[Policy], kinds: Mapping[str, Kind]) -> list[Problem]:
    """Names given twice, kinds no provider offers, keys a kind cannot have."""
    out = duplicates(policies)
    for p in policies:
        for name in p.kinds():
            if name not in kinds:
                out.append(_problem(p, f"unknown kind '{name}'{did_you_mean(name, kinds)} "
                                       f"(known kinds: {', '.join(sorted(kinds))})"))
        if p.rule == "require" and p.params.get("kind") in kinds:
            fields = _spec_fields(kinds[p.params["kind"]])
            for key, spec_field in REQUIRE_FIELDS.items():
                if key in p.params and fields is not None and spec_field not in fields:
                    out.append(_problem(p, f"a {p.params['kind']} has no {spec_field} to require {key} of"))
    return out


def _problem(p: Policy, message: str) -> Problem:
    return Problem(p.position.file, p.position.line, p.position.column, f"policies.{p.name}", message)


def _spec_fields(kind: Kind) -> set[str] | None:
    schema = kind.schema
    if isinstance(schema, str):
        from reconciler.config.validation import load_schema

        schema = load_schema(schema)
    return set(schema.get("properties") or {}) if isinstance(schema, dict) else None


class Facts:
    """What the policies read of a plan, computed once."""

    def __init__(self, result: PlanResult, kinds: Mapping[str, Kind], context: Callable[[str], KindContext],
                 now: datetime, deadlines: Mapping[str, datetime], scheduled_hourly: Mapping[str, float]):
        self.result, self.kinds, self.context, self.now = result, kinds, context, now
        self.deadlines, self.scheduled_hourly = deadlines, scheduled_hourly

    def after(self) -> Iterator[Step]:
        """Every resource the state manages after the plan (creates, updates, no-ops)."""
        for step in self.result.steps.values():
            if not step.action.type.removes and step.resource is not None:
                yield step

    def changes(self) -> Iterator[Step]:
        for step in self.result.steps.values():
            if step.action.is_change:
                yield step

    def hourly(self, step: Step) -> float | None:
        a = step.action
        if a.address in self.scheduled_hourly:
            return self.scheduled_hourly[a.address]
        return a.cost_after


def evaluate(policies: list[Policy], facts: Facts) -> list[PolicyResult]:
    results: list[PolicyResult] = []
    for p in policies:
        failed = list(RULES[p.rule](p, facts))
        if not failed:
            results.append(PolicyResult(p.name, p.enforcement, True, _passed(p, facts), None, _summary(p, facts)))
            continue
        results.extend(failed)
    return results


def override(results: list[PolicyResult], names: list[str], record: dict[str, Any]) -> list[str]:
    """Mark failed results of the named policies overridden; the names not among the
    policies (an error: a typo must not pass silently)."""
    known = {r.name for r in results}
    for r in results:
        if r.name in names and not r.passed:
            r.overridden = dict(record)
    return [n for n in names if n not in known]


def _fail(p: Policy, address: str | None, default: str, values: dict, enforcement: str | None = None) -> PolicyResult:
    message = f"{p.message} ({default})" if p.message else default
    return PolicyResult(p.name, enforcement or p.enforcement, False, message, address, values)


def _passed(p: Policy, facts: Facts) -> str:
    if p.rule == "budget":
        hourly, increase, _unknown = _totals(facts)
        sign = "-" if increase < 0 else "+"
        return f"within budget: ${hourly:,.2f}/hour after this plan, {sign}${abs(increase):,.2f}/month"
    return { "gpus": "GPU types and counts allowed", "require": "every key present",
            "protect": "nothing protected is destroyed or replaced", "deny_if": "no change matches",
            "ttl": "every resource expires in time"}[p.rule]


def _summary(p: Policy, facts: Facts) -> dict:
    if p.rule == "budget":
        hourly, increase, _unknown = _totals(facts)
        return {"hourly_usd": round(hourly, 4), "monthly_increase_usd": round(increase, 2)}
    if p.rule == "gpus":
        return {"total_gpus": sum(n for _a, _names, n in _gpus(facts))}
    return {}


# -- the rules ---------------------------------------------------------------------------
def _totals(facts: Facts) -> tuple[float, float, list[str]]:
    """(hourly total after the plan, monthly increase, addresses priced unknown)."""
    hourly = before = 0.0
    unknown: list[str] = []
    for step in facts.result.steps.values():
        a = step.action
        kind = facts.kinds.get(a.kind)
        after = None if a.type.removes else facts.hourly(step)
        if not a.type.removes and after is None and kind is not None and (isinstance(kind, Priced) or kind.unpriced):
            unknown.append(a.address)
        hourly += after or 0.0
        if a.cost_before is not None:
            before += facts.scheduled_hourly.get(a.address, a.cost_before) if not a.type.removes else a.cost_before
    return hourly, (hourly - before) * HOURS_PER_MONTH, unknown


def _budget(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    hourly, increase, unknown = _totals(facts)
    top, rise = p.params.get("max_hourly_usd"), p.params.get("max_monthly_increase_usd")
    values = {"hourly_usd": round(hourly, 4), "monthly_increase_usd": round(increase, 2)}
    if top is not None and hourly > top + 1e-9:
        yield _fail(p, None, f"${hourly:,.2f}/hour after this plan is over the ${top:,.2f}/hour budget",
                    {**values, "max_hourly_usd": top})
    if rise is not None and increase > rise + 1e-9:
        yield _fail(p, None, f"this plan adds ${increase:,.2f}/month, over the ${rise:,.2f}/month allowed",
                    {**values, "max_monthly_increase_usd": rise})
    how = p.params.get("unknown_price", "ignore")
    if how != "ignore":
        for address in unknown:
            yield _fail(p, address, "its price is unknown (the catalogue leaves it out), so the budget "
                        "cannot be checked", {"unknown_price": how}, enforcement=p.enforcement if how == "deny" else "warn")


def _gpus(facts: Facts) -> list[tuple[str, tuple[str, ...], int]]:
    out: list[tuple[str, tuple[str, ...], int]] = []
    for step in facts.after():
        kind = facts.kinds.get(step.action.kind)
        if not isinstance(kind, HasGpus) or step.spec is None:
            continue
        try:
            found = kind.gpus(facts.context(step.action.kind), step.spec)
        except Exception:  # noqa: BLE001 - the catalogue check reports a shape it cannot read
            found = None
        if found is not None:
            out.append((step.action.address, found[0], found[1]))
    return out


def _gpu_rule(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    allowed, per_vm, total = p.params.get("allowed"), p.params.get("max_per_vm"), p.params.get("max_total")
    found = _gpus(facts)
    for address, names, count in found:
        if allowed is not None and count and not set(names) & set(allowed):
            yield _fail(p, address, f"its GPU {' / '.join(names) or '(unnamed)'} is not allowed "
                        f"(allowed: {', '.join(allowed)})", {"gpu": list(names), "allowed": list(allowed)})
        if per_vm is not None and count > per_vm:
            yield _fail(p, address, f"{count} GPUs on one VM, over the {per_vm} allowed",
                        {"gpu_count": count, "max_per_vm": per_vm})
    counted = sum(n for _a, _names, n in found)
    if total is not None and counted > total:
        yield _fail(p, None, f"{counted} GPUs in total after this plan, over the {total} allowed",
                    {"total_gpus": counted, "max_total": total})


def _require(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    kind = p.params["kind"]
    for step in facts.after():
        if step.action.kind != kind or step.spec is None:
            continue
        missing: dict[str, list[str]] = {}
        for key, spec_field in REQUIRE_FIELDS.items():
            wanted = p.params.get(key) or []
            have = _keys(step.spec.get(spec_field))
            gone = [w for w in wanted if w not in have]
            if gone:
                missing[key] = gone
        gone_fields = [f for f in p.params.get("fields") or [] if _dig(step.spec, f) in (None, "", [], {})]
        if gone_fields:
            missing["fields"] = gone_fields
        if missing:
            said = "; ".join(f"{key} {', '.join(names)}" for key, names in missing.items())
            yield _fail(p, step.action.address, f"missing {said}", {"missing": missing})


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k, v in value.items() if v not in (None, "")}
    if isinstance(value, list):  # tags, or [{key, value}] lists
        return {str(v.get("key") or v.get("name")) if isinstance(v, dict) else str(v) for v in value}
    return set()


def _dig(spec: dict, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(address: str, wanted: str) -> bool:
    return address == wanted or address.startswith(wanted + "[")


def _protect(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    kind, address = p.params.get("kind"), p.params.get("address")
    if address and not any(_matches(a, address) for a in facts.result.graph):
        # a typo protects nothing and would pass in silence: said, but nothing is refused for it
        alike = address.rsplit(".", 1)[0] + "."  # its kind's: a typo of the name, not of everything
        known = {a.split("[")[0] for a in facts.result.graph if a.startswith(alike)}
        yield _fail(p, None, f"{address} is neither in the manifests nor in the state: this protects "
                    f"nothing{did_you_mean(address, known, quote=False)}", {"address": address},
                    enforcement="warn")
    for step in facts.changes():
        a = step.action
        if a.type not in (ActionType.DELETE, ActionType.REPLACE):
            continue
        if (kind and a.kind == kind) or (address and _matches(a.address, address)):
            yield _fail(p, a.address, f"the plan would {a.type.verb} it", {"action": a.type.verb})


def _plain(value: Any) -> Any:
    """A value CEL can read: known-after-apply values are null."""
    if value is UNKNOWN:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _deny_if(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    import cel

    for step in facts.changes():
        a = step.action
        if p.kind and a.kind != p.kind:
            continue
        names = {"action": a.type.verb, "kind": a.kind, "address": a.address,
                 "before": _plain(step.live.attrs) if step.live is not None else None,
                 "after": None if a.type.removes else _plain(step.spec),
                 "cost": {"before": a.cost_before, "after": a.cost_after}}
        try:
            hit = p.program.execute(cel.Context(names))
        except Exception as e:  # noqa: BLE001 - fail closed: a guardrail that cannot decide denies
            # the library's message may quote the value it choked on: a secret's is left out
            first = scrub_values((str(e).splitlines() or [e.__class__.__name__])[0], _secrets(step, facts))
            yield _fail(p, a.address, f"deny_if could not be evaluated on this change ({first}); guard "
                        "optional fields with has(...)", {"action": a.type.verb, "expression": p.params})
            continue
        if hit is True:
            yield _fail(p, a.address, f"deny_if matched: {p.params}", {"action": a.type.verb, "expression": p.params})
        elif hit is not False:  # fail closed: a string or a number is no answer (its value is not shown)
            yield _fail(p, a.address, f"deny_if gave {_cel_type(hit)}, not a boolean, on this change; write a "
                        "condition that is true or false", {"action": a.type.verb, "expression": p.params})


def _cel_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    for kind, said in ((str, "a string"), (bytes, "bytes"), (list, "a list"), (dict, "a map")):
        if isinstance(value, kind):
            return said
    return f"a {type(value).__name__}"


def _secrets(step: Step, facts: Facts) -> list[Any]:
    """The values of this change the one sensitivity rule hides, before and after."""
    names = field_names(facts.kinds.get(step.action.kind))
    derived = [*step.derived, *(step.resource.sensitive_paths if step.resource is not None else ())]
    values = [v for _p, v in hidden_leaves(step.live.attrs if step.live is not None else None, names, derived)]
    return values + [v for _p, v in hidden_leaves(step.spec, names, derived)]


def _ttl(p: Policy, facts: Facts) -> Iterator[PolicyResult]:
    kind = p.params["kind"]
    limit = durations.parse(p.params["max"]) or timedelta(0)
    for step in facts.after():
        if step.action.kind != kind or step.resource is None:
            continue
        due = facts.deadlines.get(step.action.address)
        expires = step.resource.expires or {}
        after = durations.parse(str(expires.get("after", ""))) if "after" in expires else None
        if due is None:
            yield _fail(p, step.action.address, f"it has no expires: (every {kind} must expire within "
                        f"{durations.say(limit)})", {"max": p.params["max"]})
        elif (after is not None and after > limit) or due - facts.now > limit:
            left = after if after is not None and after > limit else due - facts.now
            yield _fail(p, step.action.address, f"it expires in {durations.say(left)}, later than the "
                        f"{durations.say(limit)} allowed", {"max": p.params["max"], "expires_in": durations.say(left)})


RULES: dict[str, Callable[[Policy, Facts], Iterator[PolicyResult]]] = {
    "budget": _budget, "gpus": _gpu_rule, "require": _require, "protect": _protect, "deny_if": _deny_if,
    "ttl": _ttl,
}
