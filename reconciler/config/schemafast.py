"""A fast yes for the common case: a JSON Schema (2020-12) compiled into plain Python checks.

jsonschema walks its keyword table for every instance (about 0.2 ms for a small spec:
2 s for 10,000 resources). A manifest of many resources is nearly always valid, so the
validator asks this module first and calls jsonschema only when the answer is not a sure
"valid": jsonschema keeps producing every error message, so what a user sees on bad input
does not depend on this module.

compile_schema(schema) gives a function instance -> bool (generated Python source, one
function per schema node, that mirrors the keyword closures) that is exact for the keywords
it knows, or None when the schema uses a keyword it does not know (then every instance
goes to jsonschema). Where an exact answer would need jsonschema's finer rules (enum of
containers, uniqueness of mappings), the check raises Unsure and the caller falls back.
A reference (Ref / Template, known only at plan time) satisfies every keyword, as in
validation.py's extended validator.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from reconciler.config.model import Ref, Template

Check = Callable[[Any], bool]

# keywords that never change validity (format is an annotation unless a format checker is given)
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default", "examples",
                          "deprecated", "readOnly", "writeOnly", "format", "$defs", "definitions",
                          "markdownDescription"})
_REFERENCE = (Ref, Template)


class Unsure(Exception):
    """This instance needs jsonschema's own rules: ask it."""


class _Unsupported(Exception):
    pass


def compile_schema(schema: Any) -> Check | None:
    """A checker for `schema`, or None if it uses a keyword this module does not know:
    the closures below, then the same rules written out as one Python function per
    schema node (_Generator), which answers a plain value with no call per keyword."""
    try:
        compiler = _Compiler(schema)
        closure = compiler.compile(schema)
        return _Generator(compiler).generate(schema) or closure
    except _Unsupported:
        return None


def compile_closures(schema: Any) -> Check | None:
    """The closures alone (no generated code): what the generated check must agree with."""
    try:
        return _Compiler(schema).compile(schema)
    except _Unsupported:
        return None


def is_valid(check: Check | None, instance: Any) -> bool:
    """True only when `check` surely accepts the instance; False means "ask jsonschema"."""
    if check is None:
        return False
    try:
        return check(instance)
    except (Unsure, RecursionError):
        return False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _plain(v: Any) -> None:
    """Only JSON-shaped values are judged here."""
    if not (v is None or isinstance(v, (str, int, float, dict, list))):
        raise Unsure


def _equal_scalar(a: Any, b: Any) -> bool:
    """jsonschema's equality for scalars: booleans are not numbers, 1 == 1.0."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        raise Unsure
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if a is None or b is None:
        return a is None and b is None
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _unique(items: list) -> bool:
    if all(type(v) is str for v in items):  # the common list (tags, names): plain equality
        return len(set(items)) == len(items)
    seen = set()
    for v in items:
        if isinstance(v, (dict, list)):
            raise Unsure
        key = ("b", v) if isinstance(v, bool) else ("n", v) if _is_number(v) else (type(v).__name__, v)
        if key in seen:
            return False
        seen.add(key)
    return True


class _Compiler:
    def __init__(self, root: Any):
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return lambda v: True
        if schema is False:  # jsonschema rejects everything here, references too
            return lambda v: False
        if not isinstance(schema, dict):
            raise _Unsupported
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("then", "else"):
                continue
            build = getattr(self, "k_" + key.lstrip("$"), None)
            if build is None:
                raise _Unsupported(key)
            checks.append(build(value, schema))
        if not checks:
            return lambda v: True
        if len(checks) == 1:
            one = checks[0]
            return lambda v: isinstance(v, _REFERENCE) or one(v)

        def check(v: Any) -> bool:
            if isinstance(v, _REFERENCE):
                return True
            for c in checks:
                if not c(v):
                    return False
            return True
        return check

    # -- any type ------------------------------------------------------------------------
    def k_type(self, value: Any, _s: dict) -> Check:
        names = value if isinstance(value, list) else [value]
        if not all(n in _TYPES for n in names):
            raise _Unsupported
        tests = [_TYPES[n] for n in names]

        def check(v: Any) -> bool:
            _plain(v)
            return any(t(v) for t in tests)
        return check

    def k_enum(self, value: Any, _s: dict) -> Check:
        if not isinstance(value, list):
            raise _Unsupported
        strings = frozenset(x for x in value if isinstance(x, str))
        others = [x for x in value if not isinstance(x, str)]
        return lambda v: (v in strings) if isinstance(v, str) else any(_equal_scalar(v, x) for x in others)

    def k_const(self, value: Any, _s: dict) -> Check:
        return lambda v: _equal_scalar(v, value)

    def k_ref(self, value: Any, _s: dict) -> Check:
        if isinstance(value, str) and not value.startswith("#"):
            # another file (the manifest schema's per-kind specs, for editors): not followed
            # here; an instance that reaches it goes to jsonschema, the rest stays fast
            def elsewhere(v: Any) -> bool:
                raise Unsure
            return elsewhere
        if not isinstance(value, str):
            raise _Unsupported
        if value not in self.refs:
            self.refs[value] = lambda v: True  # placeholder while a recursive schema compiles
            target: Any = self.root
            for part in [p for p in value[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise _Unsupported
                target = target[part]
            compiled = self.compile(target)
            self.refs[value] = compiled
        refs = self.refs
        return lambda v: refs[value](v)

    def k_allOf(self, value: Any, _s: dict) -> Check:
        subs = [self.compile(s) for s in value]
        return lambda v: all(c(v) for c in subs)

    def k_anyOf(self, value: Any, _s: dict) -> Check:
        subs = [self.compile(s) for s in value]
        return lambda v: any(c(v) for c in subs)

    def k_oneOf(self, value: Any, _s: dict) -> Check:
        subs = [self.compile(s) for s in value]
        return lambda v: sum(1 for c in subs if c(v)) == 1

    def k_not(self, value: Any, _s: dict) -> Check:
        sub = self.compile(value)
        return lambda v: not sub(v)

    def k_if(self, value: Any, schema: dict) -> Check:
        test = self.compile(value)
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        keys = tuple(value.get("properties", {})) if isinstance(value, dict) else ()

        def check(v: Any) -> bool:
            if isinstance(v, dict) and any(isinstance(v.get(k), _REFERENCE) for k in keys):
                return True  # which branch applies is known at plan time (validation.py's _if_known)
            return then(v) if test(v) else otherwise(v)
        return check

    # -- strings -------------------------------------------------------------------------
    def k_minLength(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= value

    def k_maxLength(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, str) or len(v) <= value

    def k_pattern(self, value: str, _s: dict) -> Check:
        search = ecma(value).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    # -- numbers -------------------------------------------------------------------------
    def _number(self, test: Callable[[Any], bool]) -> Check:
        return lambda v: not _is_number(v) or test(v)

    def k_minimum(self, value, _s):
        return self._number(lambda v: v >= value)

    def k_maximum(self, value, _s):
        return self._number(lambda v: v <= value)

    def k_exclusiveMinimum(self, value, _s):
        return self._number(lambda v: v > value)

    def k_exclusiveMaximum(self, value, _s):
        return self._number(lambda v: v < value)

    def k_multipleOf(self, value, _s):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Unsupported  # float division: jsonschema's own rule
        def check(v):
            if isinstance(v, float):
                raise Unsure
            return v % value == 0
        return self._number(check)

    # -- arrays --------------------------------------------------------------------------
    def k_items(self, value: Any, _s: dict) -> Check:
        sub = self.compile(value)
        return lambda v: not isinstance(v, list) or all(sub(x) for x in v)

    def k_minItems(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= value

    def k_maxItems(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, list) or len(v) <= value

    def k_uniqueItems(self, value: bool, _s: dict) -> Check:
        if not value:
            return lambda v: True
        return lambda v: not isinstance(v, list) or _unique(v)

    # -- objects -------------------------------------------------------------------------
    def k_required(self, value: list, _s: dict) -> Check:
        names = tuple(value)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)

    def k_minProperties(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, dict) or len(v) >= value

    def k_maxProperties(self, value: int, _s: dict) -> Check:
        return lambda v: not isinstance(v, dict) or len(v) <= value

    def k_propertyNames(self, value: Any, _s: dict) -> Check:
        sub = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(sub(k) for k in v)

    def k_properties(self, value: dict, _s: dict) -> Check:
        subs = {name: self.compile(s) for name, s in value.items()}

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for name, item in v.items():
                sub = subs.get(name)
                if sub is not None and not sub(item):
                    return False
            return True
        return check

    def k_patternProperties(self, value: dict, _s: dict) -> Check:
        subs = [(ecma(p).search, self.compile(s)) for p, s in value.items()]
        return lambda v: not isinstance(v, dict) or all(
            sub(item) for name, item in v.items() for search, sub in subs if search(name))

    def k_additionalProperties(self, value: Any, schema: dict) -> Check:
        known = frozenset(schema.get("properties") or ())
        patterns = [ecma(p).search for p in schema.get("patternProperties") or ()]
        if value is False:  # any other key is an error, whatever its value
            return lambda v: not isinstance(v, dict) or all(
                name in known or any(p(name) for p in patterns) for name in v)
        sub = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(
            sub(item) for name, item in v.items() if name not in known and not any(p(name) for p in patterns))


# -- the same checks as generated code -------------------------------------------------------
# Per schema node, one function: a value of an exact plain type (str, int, float, bool,
# None, dict, list) runs that type's checks written out inline, in the schema's keyword
# order; anything else (a Ref, a Template, a subclass) goes to the node's closure above.
# Each line mirrors the closure of its keyword, so both give the same answer.
_EXACT = (str, int, float, bool, type(None), dict, list)
_STATIC_TYPES = {str: {"string"}, int: {"integer", "number"}, float: {"number"}, bool: {"boolean"},
                 type(None): {"null"}, dict: {"object"}, list: {"array"}}
_LENGTHS = {"minLength": str, "maxLength": str, "minItems": list, "maxItems": list,
            "minProperties": dict, "maxProperties": dict}
_CALL_KEYWORDS = ("enum", "const", "oneOf", "if", "multipleOf")  # their closures, called as they are


class _Generator:
    def __init__(self, compiler: _Compiler):
        self.compiler = compiler
        self.ns: dict[str, Any] = {"_unique": _unique, "_Unsure": Unsure}
        self.source: list[str] = []
        self.names: dict[int, str] = {}  # id(schema node) -> its function's name
        self.late: list[Callable[[], None]] = []  # tables of functions, filled after exec

    def generate(self, schema: Any) -> Check | None:
        name = self.node(schema)
        exec(compile("\n".join(self.source), "<schemafast>", "exec"), self.ns)  # noqa: S102 (our own text)
        for fill in self.late:
            fill()
        return self.ns[name]

    def const(self, value: Any) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def node(self, schema: Any) -> str:
        """The name of the function for one schema node (generated once per node)."""
        if schema is True or schema == {}:
            return self.const(lambda v: True)
        if schema is False:
            return self.const(lambda v: False)
        if id(schema) in self.names:
            return self.names[id(schema)]
        name = self.names[id(schema)] = f"n{len(self.names)}"
        general = self.const(self.compiler.compile(schema))
        by_type: dict[type, list[str]] = {t: [] for t in _EXACT}
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("then", "else"):
                continue
            for t in _EXACT:
                if by_type[t] and by_type[t][-1] in ("return False", "raise _Unsure"):
                    continue  # already rejected: nothing after it runs
                by_type[t].extend(self.keyword(key, value, schema, t))
        # types with the same lines share one test; the commonest outcome (checks) first
        groups: dict[tuple[str, ...], list[type]] = {}
        for t in _EXACT:
            body = by_type[t]
            if body and body[-1] not in ("return False", "raise _Unsure"):
                body = body + ["return True"]
            groups.setdefault(tuple(body) or ("return True",), []).append(t)
        lines = [f"def {name}(v):", "    t = type(v)"]
        for shared, types in sorted(groups.items(), key=lambda g: g[0] in (("return False",), ("return True",))):
            test = f"t is {self.const(types[0])}" if len(types) == 1 else f"t in {self.const(frozenset(types))}"
            lines.append(f"    if {test}:")
            lines.extend("        " + line for line in shared)
        lines.append(f"    return {general}(v)")
        self.source.append("\n".join(lines))
        return name

    def keyword(self, key: str, value: Any, schema: dict, t: type) -> list[str]:
        """The lines for one keyword on a value of exact type t (none: it always passes)."""
        number = t in (int, float)
        if key == "type":
            names = set(value if isinstance(value, list) else [value])
            if names & _STATIC_TYPES[t]:
                return []
            if t is float and "integer" in names:
                return ["if not v.is_integer():", "    return False"]
            return ["return False"]
        if key in _LENGTHS:
            if t is not _LENGTHS[key]:
                return []
            op = "<" if key.startswith("min") else ">"
            return [f"if len(v) {op} {self.const(value)}:", "    return False"]
        if key == "pattern":
            return [f"if {self.const(ecma(value).search)}(v) is None:", "    return False"] if t is str else []
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[key]
            return [f"if not (v {op} {self.const(value)}):", "    return False"] if number else []
        if key == "items":
            if t is not list:
                return []
            return ["for x in v:", f"    if not {self.node(value)}(x):", "        return False"]
        if key == "uniqueItems":
            return ["if not _unique(v):", "    return False"] if value and t is list else []
        if key == "required":
            return [f"for n in {self.const(tuple(value))}:", "    if n not in v:", "        return False"] \
                if t is dict else []
        if key == "propertyNames":
            return ["for k in v:", f"    if not {self.node(value)}(k):", "        return False"] if t is dict else []
        if key == "properties":
            if t is not dict:
                return []
            table = self.const({})
            subs = {n: self.node(s) for n, s in value.items()}
            self.late.append(lambda: self.ns[table].update({n: self.ns[f] for n, f in subs.items()}))
            return ["for k, x in v.items():", f"    f = {table}.get(k)",
                    "    if f is not None and not f(x):", "        return False"]
        if key == "patternProperties":
            if t is not dict:
                return []
            pairs = self.const([])
            found = [(ecma(p).search, self.node(s)) for p, s in value.items()]
            self.late.append(lambda: self.ns[pairs].extend((p, self.ns[f]) for p, f in found))
            return ["for k, x in v.items():", f"    for s, f in {pairs}:",
                    "        if s(k) and not f(x):", "            return False"]
        if key == "additionalProperties":
            if t is not dict:
                return []
            known = self.const(frozenset(schema.get("properties") or ()))
            patterns = self.const([ecma(p).search for p in schema.get("patternProperties") or ()])
            if value is False and not schema.get("patternProperties"):
                return ["for k in v:", f"    if k not in {known}:", "        return False"]
            if value is False:
                return ["for k in v:", f"    if not (k in {known} or any(p(k) for p in {patterns})):",
                        "        return False"]
            return ["for k, x in v.items():",
                    f"    if k not in {known} and not any(p(k) for p in {patterns}) and not {self.node(value)}(x):",
                    "        return False"]
        if key == "not":
            return [f"if {self.node(value)}(v):", "    return False"]
        if key in ("allOf", "anyOf"):
            if not value:  # all() of nothing passes, any() of nothing fails
                return [] if key == "allOf" else ["return False"]
            listed = ", ".join(self.node(s) for s in value) + ","
            test = "all" if key == "allOf" else "any"
            return [f"if not {test}(f(v) for f in ({listed})):", "    return False"]
        if key == "ref" or key == "$ref":
            if isinstance(value, str) and value.startswith("#"):
                return [f"if not {self.const(self.compiler.k_ref(value, schema))}(v):", "    return False"]
            return ["raise _Unsure"]
        if key in _CALL_KEYWORDS:
            return [f"if not {self.const(getattr(self.compiler, 'k_' + key)(value, schema))}(v):", "    return False"]
        raise _Unsupported(key)


__all__ = ["compile_schema", "compile_closures", "is_valid", "Unsure"]


@lru_cache(maxsize=None)
def ecma(pattern: str) -> re.Pattern:
    """A schema's `pattern` with JSON Schema's (ECMA-262) meaning of `$`: the end of the
    string. Python's `$` also matches before a final newline, so `^[a-z]+$` took "a\\n"."""
    out, escaped, in_class = [], False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "$" and not in_class:
            ch = r"\Z"
        out.append(ch)
    return re.compile("".join(out))
