"""`${...}` in manifest strings.

    ${env.NAME}                  the environment variable, substituted at load
    ${var.NAME}                  a `variables:` entry, substituted at load (alone in a
                                 string it keeps its type: a number stays a number)
    ${<kind>.<name>.<attr>}      a reference: alone in a string -> Ref; inside other
                                 text -> Template(parts); resolved at plan/apply time
    ${<kind>.<name>[<key>].<attr>}  a reference to one instance of a for_each / count
                                 resource; the key may be each.key, each.value or
                                 count.index (substituted at load)
    ${each.key} ${each.value}    in a resource with for_each; ${each.value.a.b} walks a
                                 mapping value
    ${count.index}               in a resource with count: 0, 1, ...
    ${range(3)} ${lower(var.x)}  functions (config/functions.py), evaluated at load
    ${lookup.NAME.FIELD}         a row of a service catalogue (`lookups:`), read at plan time
    $${                          a literal "${"

Values substituted from the environment or variables are never parsed again, so an
environment value holding "${...}" stays text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from reconciler.config.model import Ref, Template

# one level of braces inside: a mapping literal in a function call, ${merge(var.m, {"k": 1})}
_TOKEN = re.compile(r"\$\$\{|\$\{((?:[^{}]|\{[^{}]*\})*)\}|\$\{")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # names: always fullmatch
# an instance key, as it stands in an address: `part[p0]`, `part[0]`
INSTANCE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REFERENCE = re.compile(r"^(?P<address>[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+?(?:\[(?P<key>[^\[\]]*)\])?)"
                        r"\.(?P<attribute>[a-z0-9][a-z0-9_-]*)$")


class ExpressionError(Exception):
    """One bad expression; the message names it."""


class MissingValue(ExpressionError):
    """The expression is fine but its value is absent (an unset environment variable)."""


class AlreadyReported(ExpressionError):
    """A value known to be bad and reported once elsewhere (a variable with no value is
    reported at its declaration): the expression expands to "" with no new problem."""


class Missing(str):
    """A problem message about an absent value: in a providers block it waits until the
    provider is used, while a malformed expression is reported at once."""


@dataclass
class Scope:
    """What `${env.X}` and `${var.X}` resolve against, and whether references are allowed."""

    env: Mapping[str, str]
    variable: Callable[[str], Any]  # raises ExpressionError when unknown or broken
    refs: bool = True
    where: str = ""  # "in a provider block": said in the message when a reference is refused
    # in an instance of a for_each / count resource: {"each.key": .., "each.value": ..} or
    # {"count.index": ..}; None elsewhere
    instance: dict[str, Any] | None = None
    sensitive: frozenset = frozenset()  # names of sensitive variables
    used_sensitive: bool = False  # set when an expression read a sensitive variable
    # walk() adds the path of every string that read a sensitive variable
    sensitive_paths: set | None = None
    base_dir: str | None = None  # the declaring file's folder: file(path) reads from here
    files_read: list | None = None  # file(path) appends the resolved path: a saved plan pins it


def has_expression(text: str) -> bool:
    return "${" in text


def expand(text: str, scope: Scope, problems: list[str]) -> Any:
    """The value of a string with expressions. Each bad expression appends a message to
    `problems` (and expands to ""), so every one in the string is reported."""
    parts: list[Any] = []
    last = 0
    for m in _TOKEN.finditer(text):
        parts.append(text[last:m.start()])
        last = m.end()
        token = m.group(0)
        if token == "$${":
            parts.append("${")
        elif m.group(1) is None:
            problems.append(f"unterminated '${{' in {_short(text)!r}: close it with '}}' or write '$${{'")
        else:
            try:
                parts.append(_evaluate(m.group(1).strip(), scope))
            except AlreadyReported:
                parts.append("")
            except ExpressionError as e:
                problems.append(Missing(e) if isinstance(e, MissingValue) else str(e))
                parts.append("")
    parts.append(text[last:])
    parts = [p for p in parts if not (isinstance(p, str) and p == "")]
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]  # "${var.n}" keeps the variable's type; "${a.b.c.id}" is a Ref
    if not parts:
        return ""
    merged: list[Any] = []
    for p in parts:
        if not isinstance(p, Ref):
            p = _as_text(p, problems)
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    if len(merged) == 1 and isinstance(merged[0], str):
        return merged[0]
    return Template(tuple(merged))


def _evaluate(expr: str, scope: Scope) -> Any:
    head, _, rest = expr.partition(".")
    if head == "env":
        if not _IDENT.fullmatch(rest):
            raise ExpressionError(f"${{{expr}}}: expected ${{env.NAME}}")
        if rest not in scope.env:
            raise MissingValue(f"environment variable {rest} is not set (${{env.{rest}}})")
        return scope.env[rest]
    if head == "var":
        if not _IDENT.fullmatch(rest):
            raise ExpressionError(f"${{{expr}}}: expected ${{var.NAME}}")
        if rest in scope.sensitive:
            scope.used_sensitive = True
        return scope.variable(rest)
    if head in ("each", "count"):
        return _instance_value(expr, scope)
    if "(" in expr:
        from reconciler.config import functions
        try:
            return functions.evaluate(expr, scope, _evaluate)
        except functions.FunctionError as e:
            raise ExpressionError(str(e)) from None
    m = _REFERENCE.fullmatch(expr)
    if m is None:
        raise ExpressionError(f"cannot read ${{{expr}}}: expected ${{env.NAME}}, ${{var.NAME}} "
                              "or ${<kind>.<name>.<attribute>}")
    if not scope.refs:
        raise ExpressionError(f"${{{expr}}}: references to resources are not allowed {scope.where}".rstrip())
    address, key = m["address"], m["key"]
    if key is not None:
        address = address[: address.index("[")] + f"[{_instance_key(key.strip(), expr, scope)}]"
    return Ref(address, m["attribute"])


def _instance_key(key: str, expr: str, scope: Scope) -> str:
    """The key inside `name[...]`: written out, or each.key / each.value / count.index."""
    if key.startswith(("each.", "count.")):
        value = _instance_value(key, scope)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ExpressionError(f"${{{expr}}}: {key} is a {type(value).__name__}, not an instance key")
        key = str(value)
    if not INSTANCE_KEY.fullmatch(key):
        raise ExpressionError(f"${{{expr}}}: '{key}' is not an instance key (letters, digits, '_', '-', '.')")
    return key


def _instance_value(expr: str, scope: Scope) -> Any:
    """${each.key}, ${each.value[.path]}, ${count.index}."""
    bits = expr.split(".")
    head = bits[0]
    base = ".".join(bits[:2])
    if base not in ("each.key", "each.value", "count.index"):
        raise ExpressionError(f"${{{expr}}}: expected ${{each.key}}, ${{each.value}} or ${{count.index}}")
    if scope.instance is None or base not in scope.instance:
        needs = "for_each" if head == "each" else "count"
        raise ExpressionError(f"${{{expr}}} is only available in a resource with {needs}")
    if scope.instance.get("sensitive"):
        scope.used_sensitive = True
    value = scope.instance[base]
    for i, name in enumerate(bits[2:], start=2):
        if base != "each.value" or not isinstance(value, dict):
            raise ExpressionError(f"${{{expr}}}: {'.'.join(bits[:i])} is not a mapping")
        if name not in value:
            raise ExpressionError(f"${{{expr}}}: {'.'.join(bits[:i])} has no key '{name}'"
                                  f" (it has: {', '.join(map(str, value)) or 'none'})")
        value = value[name]
    return value


def _as_text(value: Any, problems: list[str]) -> Any:
    """A value put inside a longer string."""
    if isinstance(value, (str, Template)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    problems.append(f"a {type(value).__name__} variable cannot be placed inside a string")
    return ""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def walk(value: Any, scope: Scope, on_problem: Callable[[str, str], None], path: str = "") -> Any:
    """Expand every string in a plain value, in place for dicts and lists (they come fresh
    from the YAML reader). on_problem(path, message) for each bad expression."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        problems: list[str] = []
        scope.used_sensitive = False
        out = expand(value, scope, problems)
        if scope.used_sensitive and scope.sensitive_paths is not None:
            scope.sensitive_paths.add(path)
        for message in problems:
            on_problem(path, message)
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) or (isinstance(v, str) and "${" in v):
                value[k] = walk(v, scope, on_problem, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)) or (isinstance(v, str) and "${" in v):
                value[i] = walk(v, scope, on_problem, f"{path}[{i}]")
    return value


__all__ = ["INSTANCE_KEY", "Scope", "ExpressionError", "MissingValue", "Missing", "expand", "walk", "has_expression"]
