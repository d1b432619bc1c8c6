"""Check a loaded manifest against the schemas and the kinds: unknown kinds, spec fields
(JSON Schema 2020-12, errors pinned to file:line:col), references, policies."""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

from jsonschema import Draft202012Validator, validators

from reconciler.errors import Problem
from reconciler.model import Manifest, Ref, Resource, Template

TOP_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@lru_cache(maxsize=None)
def load_schema(filename: str) -> dict:
    """A schema from the installed package (reconciler/schemas) or the checkout's schemas/."""
    top = TOP_SCHEMAS / filename
    if top.is_file():  # a checkout (editable install): the files editors point at
        return json.loads(top.read_text())
    return json.loads(resources.files("reconciler.schemas").joinpath(filename).read_text())


def _lenient(checker_type: str):
    def check(checker, instance, _orig=Draft202012Validator.TYPE_CHECKER._type_checkers[checker_type]):
        return isinstance(instance, (Ref, Template)) or _orig(checker, instance)
    return check


# references are known only at plan/apply time: any type passes for them
_Validator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
    {t: _lenient(t) for t in ("string", "integer", "number", "boolean", "object", "array", "null")}))


@lru_cache(maxsize=None)
def _validator(filename: str):
    return _Validator(load_schema(filename))


def _path_key(parts) -> str:
    out = "spec"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _problem(resource: Resource, field: str, message: str) -> Problem:
    pos = resource.positions.get(field) or resource.where(field.split("[")[0])
    return Problem(pos.file, pos.line, pos.column, f"{resource.address}.{field}", message)


def _schema_problems(resource: Resource, schema_file: str) -> Iterator[Problem]:
    for error in sorted(_validator(schema_file).iter_errors(resource.spec), key=lambda e: list(e.absolute_path)):
        if isinstance(error.instance, (Ref, Template)):
            continue
        field = _path_key(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list((error.schema.get("properties") or {}).keys())
            for extra in sorted(set(error.instance) - set(allowed)):
                hint = difflib.get_close_matches(extra, allowed, n=1)
                message = f"unknown field '{extra}'" + (f"; did you mean '{hint[0]}'?" if hint else
                                                        f" (allowed: {', '.join(allowed)})" if allowed else "")
                yield _problem(resource, f"{field}.{extra}", message)
            continue
        yield _problem(resource, field, error.message)


def _refs(value: Any, path: str) -> Iterator[tuple[str, Ref]]:
    if isinstance(value, Ref):
        yield path, value
    elif isinstance(value, Template):
        for p in value.parts:
            if isinstance(p, Ref):
                yield path, p
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _refs(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _refs(v, f"{path}[{i}]")


def check_local_path(resource: Resource, field: str, value: str) -> Problem | None:
    """A local file a spec names (public_key_file, source): inside the manifest's folder,
    existing, and a file. `field` is relative to the resource, e.g. "spec.files[0].source"."""
    base = Path(resource.base_dir).resolve()
    target = (base / value).resolve()
    if base != target and base not in target.parents:
        return _problem(resource, field, f"'{value}' points outside the manifest folder {base}")
    if target.is_dir():
        return _problem(resource, field, f"'{value}' is a directory, not a file")
    if not target.exists():
        return _problem(resource, field, f"'{value}' does not exist (looked in {base})")
    return None


def validate(manifest: Manifest, kinds: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    addresses = {r.address: r for r in manifest.resources}
    by_kind: dict[str, list[Resource]] = {}
    for r in manifest.resources:
        kind = kinds.get(r.kind)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            hint = difflib.get_close_matches(r.kind, list(kinds), n=1)
            problems.append(_problem(r, "kind", f"unknown kind '{r.kind}'"
                                     + (f"; did you mean '{hint[0]}'?" if hint else f" (known kinds: {known})")))
            continue
        by_kind.setdefault(r.kind, []).append(r)
        schema = getattr(kind, "schema", None)
        if schema:
            problems.extend(_schema_problems(r, schema))
        for field, ref in _refs(r.spec, "spec"):
            target = addresses.get(ref.address)
            if target is None:
                hint = difflib.get_close_matches(ref.address, list(addresses), n=1)
                problems.append(_problem(r, field, f"reference to {ref.address}, which is not in the manifests"
                                         + (f"; did you mean {hint[0]}?" if hint else "")))
                continue
            target_kind = kinds.get(target.kind)
            outputs = set(getattr(target_kind, "outputs", {"id"}) or {"id"}) if target_kind else None
            if outputs is not None and ref.attribute not in outputs:
                problems.append(_problem(r, field, f"{ref.address} has no attribute '{ref.attribute}' "
                                         f"(it has: {', '.join(sorted(outputs))})"))
        for dep in r.depends_on:
            if dep not in addresses:
                problems.append(_problem(r, "depends_on", f"depends_on {dep}, which is not in the manifests"))
        policies = tuple(getattr(kind, "deletion_policies", ("delete",)))
        if r.deletion_policy is not None and r.deletion_policy not in policies:
            problems.append(_problem(r, "deletion_policy", f"'{r.deletion_policy}' is not a deletion policy of "
                                     f"{r.kind} (allowed: {', '.join(policies)})"))
    for kind_name, items in by_kind.items():
        offline = getattr(kinds[kind_name], "check_offline", None)
        if offline:
            problems.extend(offline(items) or [])
    return problems
