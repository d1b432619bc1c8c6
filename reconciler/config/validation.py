"""Check a loaded manifest against the schemas and the kinds, with no API call.

Per resource: the kind exists; the spec matches the kind's JSON Schema (2020-12), each
error pinned to file:line:col of the failing field; references name resources in the
manifest and attributes the target kind outputs; depends_on names resources;
deletion_policy is one the kind knows; lifecycle.ignore_changes names plausible fields;
then each kind's optional check_offline. Cycles are the graph module's job.

References (Ref / Template values) are known only at plan/apply time, so every schema
keyword passes them ("any").
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Mapping

from reconciler.config import schemafast, walk
from reconciler.config.declared import DeclaredKind
from reconciler.config.hints import did_you_mean
from reconciler.config.lookups import PREFIX as LOOKUP_PREFIX
from reconciler.config.model import Manifest, Position, Ref, Resource, Template
from reconciler.config.sensitivity import SECRET_NAMES, looks_secret
from reconciler.config.variables import json_type
from reconciler.errors import Problem

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

TOP_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"  # a checkout's schemas/
# field names whose values never appear in a message, whatever the kind says
ALWAYS_SENSITIVE = SECRET_NAMES  # one notion of sensitive: reconciler/config/sensitivity.py
MAX_MESSAGE = 240


# -- schemas ------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def load_schema(filename: str) -> dict:
    """A schema by file name: from the installed package (reconciler/schemas/, shipped in
    the wheel), else from the checkout's top-level schemas/. Raises FileNotFoundError."""
    try:
        resource = resources.files("reconciler.schemas").joinpath(filename)
        if resource.is_file():
            return json.loads(resource.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, NotADirectoryError):
        pass  # an editable checkout without the mapping: fall back to the folder
    return json.loads((TOP_SCHEMAS / filename).read_text(encoding="utf-8"))


def _skip_references(check: Callable) -> Callable:
    def keyword(validator, value, instance, schema):
        if isinstance(instance, (Ref, Template)):
            return iter(())
        return check(validator, value, instance, schema)
    return keyword


def _if_known(check: Callable) -> Callable:
    """An `if` on a field holding a reference (provider_id: ${lookup.a6000.provider_id})
    cannot tell which branch applies: neither is applied here; the plan-time checks judge
    the resolved value."""
    def keyword(validator, if_schema, instance, schema):
        if isinstance(instance, dict) and isinstance(if_schema, dict) and any(
                isinstance(instance.get(k), (Ref, Template)) for k in if_schema.get("properties", {})):
            return iter(())
        return check(validator, if_schema, instance, schema)
    return keyword


@lru_cache(maxsize=1)
def _jsonschema_class():
    """Draft 2020-12 where every keyword treats a reference as "any value". Imported on
    first use: valid input never needs jsonschema (schemafast says so), and its import is
    a sixth of a one-provider plan's start-up."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator, value, instance, schema):  # `$` is the end of the string, as in ECMA-262
        if validator.is_type(instance, "string") and not schemafast.ecma(value).search(instance):
            yield ValidationError(f"{instance!r} does not match {value!r}")

    checks = {**Draft202012Validator.VALIDATORS, "pattern": pattern}
    return validators.extend(
        Draft202012Validator,
        validators={name: _if_known(check) if name == "if" else _skip_references(check)
                    for name, check in checks.items()})


class LazyValidator:
    """A schema with jsonschema's validator built only when asked for errors."""

    def __init__(self, schema: dict):
        self.schema = schema
        self._real = None

    @property
    def real(self):
        if self._real is None:
            self._real = _jsonschema_class()(self.schema)
        return self._real

    def iter_errors(self, instance: Any):
        return self.real.iter_errors(instance)

    def is_valid(self, instance: Any) -> bool:
        return self.real.is_valid(instance)


validator_class = _Validator = LazyValidator


@lru_cache(maxsize=None)
def validator_for(filename: str):
    return _Validator(load_schema(filename))


# -- schema errors -> Problems --------------------------------------------------------------
def field_key(prefix: str, parts: Iterable) -> str:
    """("details", "vcpus") -> "spec.details.vcpus"; ints become [i]."""
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _looks_secret(value: Any) -> bool:
    """A value that is a secret whatever field it sits in: a private key pasted where the
    public one goes is never echoed back."""
    return isinstance(value, str) and looks_secret(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


_hint = did_you_mean


def _messages(error: ValidationError, key: str, secret: bool) -> Iterator[tuple[str, str]]:
    """(field key, message) pairs for one error; `key` is the instance's field key."""
    v, value, instance, schema = error.validator, error.validator_value, error.instance, error.schema
    shown = "the value" if secret else _short(instance)
    if v == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties") or {})
        patterns = [schemafast.ecma(p) for p in schema.get("patternProperties") or {}]
        for extra in instance:
            if extra in allowed or any(p.search(extra) for p in patterns):
                continue
            hint = _hint(extra, allowed) or (f" (allowed: {', '.join(allowed)})" if allowed else "")
            yield field_key(key, [extra]), f"unknown field '{extra}'{hint}"
    elif v == "required" and isinstance(instance, dict):
        missing = [p for p in value if p not in instance]
        yield key, "missing required field " + ", ".join(f"'{p}'" for p in missing)
    elif v == "type":
        wanted = value if isinstance(value, list) else [value]
        got = json_type(instance)
        shown_value = "" if secret or got in ("mapping", "list", "null") else " " + (
            json.dumps(instance) if isinstance(instance, bool) else _short(instance))
        yield key, f"expected {' or '.join(wanted)}, got {got}{shown_value}"
    elif v == "enum":
        hint = _hint(str(instance), [str(x) for x in value]) if isinstance(instance, str) and not secret else ""
        yield key, f"{shown} is not one of {', '.join(repr(x) for x in value)}{hint}"
    elif v == "const":
        yield key, f"must be {value!r}"
    elif v == "pattern":
        about = schema.get("description")
        yield key, f"{shown} is not valid here" + (f": {about}" if about else f" (expected pattern {value})")
    elif v in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match
        deeper = best_match(error.context)
        yield from _messages(deeper, field_key(key, list(deeper.path)), secret)
    elif secret:
        yield key, f"the value does not satisfy '{v}: {_short(value)}'"
    else:
        yield key, error.message


def schema_problems(validator, instance: Any, prefix: str, locate: Callable[[str], Position],
                    label: Callable[[str], str], sensitive: frozenset = ALWAYS_SENSITIVE) -> list[Problem]:
    """Every schema error as a Problem. `prefix` is the field key of `instance` ("spec"),
    locate(key) gives its position and label(key) the problem's path."""
    if schemafast.is_valid(_fast_check(validator), instance):
        return []  # surely valid: jsonschema is asked only for the messages of invalid input
    out: dict[tuple[str, str], Problem] = {}
    for error in validator.iter_errors(instance):
        key = field_key(prefix, error.absolute_path)
        secret = any(str(p) in sensitive for p in error.absolute_path) or _looks_secret(error.instance)
        for field, message in _messages(error, key, secret):
            pos = locate(field)
            out.setdefault((field, message), Problem(pos.file, pos.line, pos.column, label(field),
                                                     _one_line(message)))
    return sorted(out.values(), key=lambda p: (p.file, p.line, p.column))


_FAST: dict[int, tuple[Any, Any]] = {}


def _fast_check(validator):
    """The compiled fast check of a validator's schema, built once per validator."""
    cached = _FAST.get(id(validator))
    if cached is None or cached[0] is not validator:
        cached = _FAST[id(validator)] = (validator, schemafast.compile_schema(validator.schema))
    return cached[1]


# -- the checks -----------------------------------------------------------------------------
def _problem(resource: Resource, field: str, message: str) -> Problem:
    pos = resource.where(field)
    return Problem(pos.file, pos.line, pos.column, f"{resource.address}.{field}", _one_line(message))


_refs = walk.refs_at


def _kind_schema(kind: DeclaredKind) -> dict | None:
    """The kind's spec schema: a file name in schemas/, an inline dict, or None (no check)."""
    schema = kind.schema
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, str) and schema:
        return load_schema(schema)
    return None


_INLINE: dict[int, tuple[dict, Any]] = {}


def _inline_validator(schema: dict):
    """A kind defined in tests may carry its schema inline; build its validator once."""
    cached = _INLINE.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _INLINE[id(schema)] = (schema, _Validator(schema))
    return cached[1]


def _spec_problems(resource: Resource, kind: DeclaredKind) -> list[Problem]:
    schema = kind.schema
    if not schema:
        return []
    try:
        validator = validator_for(schema) if isinstance(schema, str) else _inline_validator(schema)
    except FileNotFoundError:
        return [_problem(resource, "kind", f"the schema {schema} of kind {resource.kind} is not installed")]
    if schemafast.is_valid(_fast_check(validator), resource.spec):
        return []  # the common case: nothing to report, so no sensitive set to build
    sensitive = ALWAYS_SENSITIVE | frozenset(kind.sensitive)
    # fields filled from a sensitive variable: their values are never echoed either
    sensitive |= {re.sub(r"(\[\d+\])+$", "", p).rsplit(".", 1)[-1] for p in resource.sensitive_paths}
    return schema_problems(validator, resource.spec, "spec", resource.where,
                           lambda field: f"{resource.address}.{field}", sensitive)


class _Addresses:
    """The manifest's addresses, with "did you mean" among those of the same kind: cheap
    and cached, because 10,000 resources may all name the same missing address."""

    def __init__(self, resources: Collection[Resource], lookups: Collection[str] = ()):
        self.resources = resources
        self.lookups = lookups
        self._by_address: dict[str, Resource] | None = None
        self._by_kind: dict[str, list[str]] | None = None
        self._hints: dict[tuple[str, str], str] = {}

    @property
    def by_address(self) -> dict[str, Resource]:
        """address -> resource: built when a reference or depends_on is first checked (100,000
        plain datums never ask, and their addresses are never made)."""
        if self._by_address is None:
            self._by_address = {r.address: r for r in self.resources}
        return self._by_address

    @property
    def by_kind(self) -> dict[str, list[str]]:
        """kind -> its addresses: built on the first hint (a clean manifest never asks)."""
        if self._by_kind is None:
            self._by_kind = {}
            for address, r in self.by_address.items():
                self._by_kind.setdefault(r.kind, []).append(address)
        return self._by_kind

    def hint(self, missing: str, asker: str) -> str:
        key = (missing, asker)
        if key not in self._hints:
            kind = missing.rsplit(".", 1)[0]
            choices = [a for a in self.by_kind.get(kind, ())[:2000] if a != asker]
            self._hints[key] = did_you_mean(missing, choices, quote=False)
        return self._hints[key]


def _reference_problems(resource: Resource, addresses: _Addresses,
                        kinds: Mapping[str, DeclaredKind]) -> Iterator[Problem]:
    by_address = addresses.by_address
    for field, ref in _refs(resource.spec, "spec"):
        if ref.address.startswith(LOOKUP_PREFIX):  # ${lookup.NAME.FIELD}: its fields are known at plan time
            name = ref.address[len(LOOKUP_PREFIX):]
            if name not in addresses.lookups:
                yield _problem(resource, field, f"{ref}: no lookup '{name}' is declared under lookups:"
                               + _hint(name, addresses.lookups))
            continue
        if ref.address == resource.address:
            yield _problem(resource, field, f"{ref} refers to the resource itself")
            continue
        target = by_address.get(ref.address)
        if target is None:
            yield _problem(resource, field, f"{ref} refers to {ref.address}, which is not in the manifests"
                           + addresses.hint(ref.address, resource.address))
            continue
        target_kind = kinds.get(target.kind)
        if target_kind is None:
            continue  # its unknown kind is reported on its own
        outputs = set(target_kind.outputs)
        if ref.attribute not in outputs:
            yield _problem(resource, field, f"{ref}: {target.kind} has no attribute '{ref.attribute}'"
                           f"{_hint(ref.attribute, outputs)} (it has: {', '.join(sorted(outputs))})")


def _ignore_problem(resource: Resource, index: int, path: str, schema: dict | None) -> Problem | None:
    field = f"lifecycle.ignore_changes[{index}]"
    bare = path[5:] if path.startswith("spec.") else path
    segments = bare.split(".")
    if not bare or not all(re.fullmatch(r"[^.\[\]\s]+(\[\d+\])*", s) for s in segments):
        return _problem(resource, field, f"'{path}' is not a field path (e.g. details.flavor_id)")
    node = schema
    for segment in segments:
        name = segment.split("[")[0]
        if not isinstance(node, dict) or not isinstance(node.get("properties"), dict):
            return None  # free-form below here: anything is plausible
        props = node["properties"]
        if name in props:
            node = props[name]
            for _ in range(segment.count("[")):
                node = node.get("items") if isinstance(node, dict) else None
            continue
        if node.get("additionalProperties", True) is False and not node.get("patternProperties"):
            return _problem(resource, field, f"'{path}': {resource.kind} has no field '{name}'"
                            + _hint(name, props))
        return None
    return None


def _envelope_problems(resource: Resource, kind: DeclaredKind, addresses: _Addresses) -> Iterator[Problem]:
    by_address = addresses.by_address
    for i, dep in enumerate(resource.depends_on):
        if dep == resource.address:
            yield _problem(resource, f"depends_on[{i}]", "a resource cannot depend on itself")
        elif dep not in by_address:
            yield _problem(resource, f"depends_on[{i}]", f"{dep} is not in the manifests"
                           + addresses.hint(dep, resource.address))
    policies = kind.deletion_policies
    if resource.deletion_policy is not None and resource.deletion_policy not in policies:
        yield _problem(resource, "deletion_policy",
                       f"'{resource.deletion_policy}' is not a deletion policy of {resource.kind}"
                       f"{_hint(resource.deletion_policy, policies)} (allowed: {', '.join(policies)})")
    if resource.lifecycle.ignore_changes:
        try:
            schema = _kind_schema(kind)
        except FileNotFoundError:
            schema = None
        for i, path in enumerate(resource.lifecycle.ignore_changes):
            problem = _ignore_problem(resource, i, path, schema)
            if problem:
                yield problem


MAX_EXACT_INT = 2 ** 53 - 1  # beyond this, JSON parsers (JavaScript's, many others) round


def _number_problems(resource: Resource) -> Iterator[Problem]:
    """Numbers no request can carry: NaN and infinities are not JSON at all (json.dumps
    would write them, the services reject them, after earlier changes were made), and
    integers past 2**53 are silently rounded by most parsers."""
    stack: list[tuple[str, Any]] = [("spec", resource.spec)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            yield _problem(resource, key, f"{value} is not a number JSON can carry; write a finite number "
                           "(or a string, e.g. \"NaN\")")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
            yield _problem(resource, key, f"a {len(str(abs(value)))}-digit integer is outside the range JSON "
                           f"numbers carry exactly (±{MAX_EXACT_INT}); write it as a string if it is an id")


_QUIET_LEAVES = frozenset({str, bool, type(None)})  # exact types: never a reference, never a bad number


def _plain(value: Any) -> bool:
    """True when a spec holds no reference and no number _number_problems would report:
    then neither walk can find anything. Exact types only; anything else says False and
    the walks run as before."""
    t = type(value)
    if t is dict:
        for v in value.values():
            t = type(v)
            if t in _QUIET_LEAVES or t is int and -MAX_EXACT_INT <= v <= MAX_EXACT_INT:
                continue
            if not _plain(v):
                return False
        return True
    if t is list:
        for v in value:
            t = type(v)
            if t in _QUIET_LEAVES or t is int and -MAX_EXACT_INT <= v <= MAX_EXACT_INT:
                continue
            if not _plain(v):
                return False
        return True
    if t in _QUIET_LEAVES:
        return True
    if t is int:
        return -MAX_EXACT_INT <= value <= MAX_EXACT_INT
    if t is float:
        return value - value == 0.0  # false for NaN and the infinities only
    return False


def validate(manifest: Manifest, kinds: Mapping[str, DeclaredKind]) -> list[Problem]:
    """Every problem found, in file order. `kinds`: kind name -> DeclaredKind (from the engine)."""
    problems: list[Problem] = []
    addresses = _Addresses(manifest.resources, manifest.lookups)
    by_kind: dict[str, list[Resource]] = {}
    for r in manifest.resources:
        kind = kinds.get(r.kind)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            problems.append(_problem(r, "kind", f"unknown kind '{r.kind}'{_hint(r.kind, kinds)} "
                                     f"(known kinds: {known})"))
            continue
        items = by_kind.get(r.kind)
        if items is None:
            items = by_kind[r.kind] = []
        items.append(r)
        # the same checks in the same order; a plain spec (most of 100,000) skips the two walks
        plain = _plain(r.spec)
        if not plain:
            problems.extend(_number_problems(r))
        spec_problems = _spec_problems(r, kind)
        if spec_problems:
            problems.extend(spec_problems)
        if not plain:
            problems.extend(_reference_problems(r, addresses, kinds))
        if r.depends_on or r.deletion_policy is not None or r.lifecycle.ignore_changes:
            problems.extend(_envelope_problems(r, kind, addresses))
    problems.extend(_local_problems(manifest, kinds, by_kind))
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.column))


def local_problems(manifest: Manifest, kinds: Mapping[str, DeclaredKind]) -> list[Problem]:
    """The part of validate() that looks beyond the manifest's text (local files, the
    kinds' own offline checks): what still runs when the manifest cache says the rest
    was checked clean already."""
    by_kind: dict[str, list[Resource]] = {}
    for r in manifest.resources:
        if r.kind in kinds:
            by_kind.setdefault(r.kind, []).append(r)
    problems = _local_problems(manifest, kinds, by_kind)
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.column))


def _local_problems(manifest: Manifest, kinds: Mapping[str, DeclaredKind],
                    by_kind: Mapping[str, list[Resource]]) -> list[Problem]:
    from reconciler.config import localfiles
    problems = list(localfiles.check(manifest, kinds))
    for kind_name, items in by_kind.items():
        problems.extend(kinds[kind_name].check_offline(items) or [])
    return problems


# -- for the kinds' check_offline ------------------------------------------------------------
def check_local_path(resource: Resource, field_path: str, value: Any) -> Problem | None:
    """A local file a spec names (public_key_file, source, ...) must be a file inside the
    manifest's folder: no absolute path elsewhere, no `..` escape, no directory, and it
    must exist. `field_path` is relative to the resource, e.g. "spec.files[0].source".
    A reference (known only at apply time) is not checked."""
    if isinstance(value, (Ref, Template)) or value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return _problem(resource, field_path, "expected a file path")
    base = Path(resource.base_dir).resolve()
    raw = Path(value).expanduser()
    target = (raw if raw.is_absolute() else base / raw).resolve()
    if target != base and base not in target.parents:
        return _problem(resource, field_path, f"'{value}' is outside the manifest folder {base}; "
                        "keep files beside the manifests")
    try:
        if target.is_dir():
            return _problem(resource, field_path, f"'{value}' is a directory, not a file")
        if target.exists() and not target.is_file():  # a FIFO would hang the read, a device never ends
            return _problem(resource, field_path, f"'{value}' is not a regular file (a device, pipe or socket is not read)")
        if not target.is_file():
            return _problem(resource, field_path, f"'{value}' does not exist (looked in {base})")
    except OSError as e:  # a name too long for the file system, a loop of links: bad input, not a crash
        shown = value if len(value) <= 60 else value[:57] + "..."
        return _problem(resource, field_path, f"'{shown}' cannot be looked up: {e.strerror or e}")
    return None


__all__ = ["load_schema", "validate", "local_problems", "check_local_path", "schema_problems", "validator_for", "field_key"]
