"""Policies as the user wrote them: a manifest's top-level `policies:` and policy files
from outside the repository (--policy-file FILE, RECONCILER_POLICY_FILE).

Each policy has a name, exactly one rule and an enforcement:

    budget   {max_hourly_usd, max_monthly_increase_usd, unknown_price: deny|warn|ignore}
    gpus     {allowed: [gpu_code or gpu_type], max_per_vm, max_total}
    require  {kind, properties|tags|metadata|fields: [keys]}
    protect  {kind} or {address}
    deny_if  "CEL expression" (with an optional policy-level `kind:`)
    ttl      {kind, max: 24h}

Problems are pinned to file:line:col. The CEL of a deny_if is compiled here
(config/celcheck.py), so an expression that does not compile, names a variable other than
action, kind, address, before, after, cost and its macros' own, or calls a function this
CEL lacks, is bad input before any API call. Whether a named kind
exists is the engine's to say (engine/policies.problems): config knows no kinds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from reconciler.config import durations
from reconciler.config.boundedread import Refused, read_bytes
from reconciler.config.celcheck import compile_cel
from reconciler.config.model import Position
from reconciler.config.validation import LazyValidator, load_schema, schema_problems, validator_class
from reconciler.config.yamlread import locate as locate_in
from reconciler.config.yamlread import read_documents
from reconciler.errors import ManifestError, Problem

RULES = ("budget", "gpus", "require", "protect", "deny_if", "ttl")
REQUIRE_KEYS = ("properties", "tags", "metadata", "fields")  # what a require lists
ENV = "RECONCILER_POLICY_FILE"  # one path, or several joined by os.pathsep
MAX_FILE_BYTES = 10 * 1024 * 1024  # as for manifests


@dataclass(frozen=True)
class Policy:
    name: str
    rule: str  # one of RULES
    params: Any  # the rule's mapping; the CEL text for deny_if
    position: Position
    enforcement: str = "deny"
    message: str = ""
    kind: str | None = None  # deny_if: only changes of this kind
    program: Any = field(default=None, compare=False, repr=False)  # deny_if compiled

    def kinds(self) -> list[str]:
        """The kinds this policy names (checked against the providers' kinds)."""
        named = self.params.get("kind") if isinstance(self.params, dict) else None
        return [k for k in (self.kind, named) if isinstance(k, str)]


@lru_cache(maxsize=1)
def _validator() -> LazyValidator:
    schema = load_schema("manifest.schema.json")
    return validator_class({**schema["$defs"]["policy"], "$defs": schema["$defs"]})


def parse(items: Any, prefix: str, locate: Callable[[str], Position], problems: list[Problem],
          broken: set[str] | None = None) -> list[Policy]:
    """The policies of one `policies:` list; `prefix` is its field key ("policies").
    `broken`: the field keys a schema check of the whole document already reported (a
    manifest's); None: check each policy against the schema here (a policy file's)."""
    out: list[Policy] = []
    if not isinstance(items, list):
        return out  # the envelope schema said so
    for i, item in enumerate(items):
        key = f"{prefix}[{i}]"
        if broken is not None:
            if any(b == key or b.startswith((key + ".", key + "[")) for b in broken):
                continue
        else:
            bad = schema_problems(_validator(), item, key, locate, lambda k: k)
            if bad:
                problems.extend(bad)
                continue
        rules = [r for r in RULES if r in item]
        if len(rules) != 1:
            pos = locate(key)
            said = ", ".join(rules) if rules else "none"
            problems.append(Problem(pos.file, pos.line, pos.column, key,
                                    f"policy '{item['name']}' needs exactly one rule of {', '.join(RULES)} "
                                    f"(found: {said})"))
            continue
        rule = rules[0]
        program = None
        if rule == "deny_if":
            program, why = compile_cel(item["deny_if"])
            if why:
                pos = locate(f"{key}.deny_if")
                problems.append(Problem(pos.file, pos.line, pos.column, f"{key}.deny_if", why))
                continue
        elif "kind" in item:
            pos = locate(f"{key}.kind")
            problems.append(Problem(pos.file, pos.line, pos.column, f"{key}.kind",
                                    f"a policy-level kind goes with deny_if; put it inside {rule}: {{kind: ...}}"))
            continue
        if rule == "require" and not any(k in item["require"] for k in REQUIRE_KEYS):
            pos = locate(f"{key}.require")
            problems.append(Problem(pos.file, pos.line, pos.column, f"{key}.require",
                                    f"require needs at least one of {', '.join(REQUIRE_KEYS)} (as written it "
                                    "requires nothing and always passes)"))
            continue
        why = durations.problem(item["ttl"]["max"]) if rule == "ttl" else None
        if why:
            pos = locate(f"{key}.ttl.max")
            problems.append(Problem(pos.file, pos.line, pos.column, f"{key}.ttl.max", why))
            continue
        out.append(Policy(name=item["name"], rule=rule, params=item[rule], position=locate(key),
                          enforcement=item.get("enforcement", "deny"), message=item.get("message", ""),
                          kind=item.get("kind"), program=program))
    return out


def load_files(files: list[str]) -> list[Policy]:
    """The policies in these files (each a YAML mapping with `policies:` only). Raises
    ManifestError with every problem."""
    problems: list[Problem] = []
    out: list[Policy] = []
    for name in files:
        try:  # held to the manifests' rules: a FIFO or /dev/zero is refused unread
            text = read_bytes(name, MAX_FILE_BYTES).decode("utf-8-sig")
        except Refused as e:
            problems.append(Problem(name, 1, 1, "", f"the policy file {e}"))
            continue
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(name, 1, 1, "", f"cannot read the policy file: {getattr(e, 'strerror', None) or e}"))
            continue
        for doc in read_documents(text, name, problems):
            if doc.value is None:
                continue
            if not isinstance(doc.value, dict) or set(doc.value) - {"policies"}:
                extra = sorted(set(doc.value) - {"policies"}) if isinstance(doc.value, dict) else []
                problems.append(Problem(doc.position.file, doc.position.line, doc.position.column, "",
                                        "a policy file is a mapping with policies: only"
                                        + (f" (found {', '.join(map(str, extra))})" if extra else "")))
                continue
            positions: Mapping[str, Position] = doc.positions
            items = doc.value.get("policies")
            if not isinstance(items, list):  # no envelope schema here: a mapping would be silently no policy
                pos = locate_in(positions, "policies")
                problems.append(Problem(pos.file, pos.line, pos.column, "policies",
                                        f"expected a list of policies (- name: ...), got {_what(items)}"))
                continue
            out.extend(parse(items, "policies", lambda k: locate_in(positions, k), problems))
    if problems:
        raise ManifestError(problems)
    return out


def _what(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", str: "a string", bool: "a boolean"}.get(type(value), f"a {type(value).__name__}")


def files_from(flags: list[str] | tuple[str, ...], env: Mapping[str, str]) -> list[str]:
    """--policy-file values, then RECONCILER_POLICY_FILE's paths (an organisation's)."""
    from_env = [p for p in env.get(ENV, "").split(os.pathsep) if p.strip()]
    return list(dict.fromkeys([*from_env, *flags]))


def duplicates(policies: list[Policy]) -> list[Problem]:
    """A name given twice (in a manifest or a policy file): --override-policy could not tell them apart."""
    seen: dict[str, Policy] = {}
    problems = []
    for p in policies:
        if p.name in seen:
            pos = p.position
            problems.append(Problem(pos.file, pos.line, pos.column, "policies",
                                    f"policy '{p.name}' is defined twice (also at {seen[p.name].position})"))
        else:
            seen[p.name] = p
    return problems
