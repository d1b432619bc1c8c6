"""Custom metadata checked against the deployment's schema (GET /custom_metadata) at plan
time: an unknown field, a wrong type, a value outside the allowed list or range, or a
missing required field is reported with the manifest position, before any write."""
from __future__ import annotations

from typing import Any

from reconciler.config.model import Ref, Resource, Template
from reconciler.errors import Problem
from reconciler.providers.shared import problem

TYPES = {"string": "a string", "number": "a number", "date": "a date as Unix seconds (a number)"}


def check(schema: dict, resources: list[Resource]) -> list[Problem]:
    fields = {f["name"]: f for f in schema.get("fields") or [] if isinstance(f, dict) and f.get("name")}
    problems: list[Problem] = []
    for r in resources:
        values = r.spec.get("custom_metadata")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            field = fields.get(key)
            if field is None:
                known = ", ".join(sorted(fields)) or "none"
                problems.append(problem(r, f"custom_metadata.{key}", f"unknown custom metadata field {key!r} "
                                                 f"(this deployment defines: {known})"))
                continue
            message = value_problem(field, value)
            if message:
                problems.append(problem(r, f"custom_metadata.{key}", message))
        for name, field in fields.items():
            if field.get("required") and name not in values:
                problems.append(problem(r, "custom_metadata", f"custom metadata field {name!r} is required by this "
                                                  "deployment"))
    return problems


def value_problem(field: dict, value: Any) -> str | None:
    if isinstance(value, (Ref, Template)):
        return None  # known at apply time
    if isinstance(value, list):
        if not field.get("multiple"):
            return f"{field['name']} takes one value, not a list"
        return next((m for m in (value_problem(field, v) for v in value) if m), None)
    kind = field.get("type", "string")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (kind == "string" and not isinstance(value, str)) or (kind in ("number", "date") and not is_number):
        return f"{field['name']} must be {TYPES.get(kind, kind)}, not {value!r}"
    allowed = field.get("allowed_values")
    if allowed and value not in allowed:
        return f"{value!r} is not an allowed value of {field['name']} (allowed: {', '.join(map(str, allowed))})"
    bounds = field.get("range") or {}
    if is_number and bounds.get("min") is not None and value < bounds["min"]:
        return f"{field['name']} must be at least {bounds['min']}, not {value}"
    if is_number and bounds.get("max") is not None and value > bounds["max"]:
        return f"{field['name']} must be at most {bounds['max']}, not {value}"
    return None

