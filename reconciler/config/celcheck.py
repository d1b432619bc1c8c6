"""A deny_if's CEL, checked when the policy loads: it compiles, the names it reads are the
change's (action, kind, address, before, after, cost) or a macro's own variable, and the
functions it calls are ones this CEL evaluates. Each of those would otherwise surface only
when a change is evaluated (and then deny it: the policies fail closed).

common-expression-language lists an expression's variables and functions, but counts the
variable a macro binds (the `f` of `after.files.exists(f, f.path == "/a")`) among the
variables; a small scan of the text says which names are bound, and where.
"""
from __future__ import annotations

import re
from typing import Any

from reconciler.config.hints import did_you_mean

CEL_VARIABLES = frozenset({"action", "kind", "address", "before", "after", "cost"})
# type names are identifiers in CEL: type(after.note) == string
CEL_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type",
                            "type"})
# The functions cel-rust evaluates natively in common-expression-language 0.10 (pyproject pins
# <0.11 for this list: tests/test_guardrails.py evaluates every one). Its Python-side extras
# (cel.stdlib: max, charAt, lowerAscii, math.*) are not registered, so they are not here.
# Operators (_+_, @in, !_) are no names a user writes and always pass.
CEL_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches",
    "int", "uint", "double", "string", "bytes", "dyn", "type", "duration", "timestamp",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
})
MACROS = ("all", "exists", "exists_one", "map", "filter")  # each binds its first argument

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"""
    (?P<string>[bB]?[rR][bB]?(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
              |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
   |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?|\.\d+(?:[eE][+-]?\d+)?)
   |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
   |(?P<space>\s+)
   |(?P<punct>.)""", re.VERBOSE | re.DOTALL)


def compile_cel(text: str) -> tuple[Any, str | None]:
    """(program, None) or (None, why not). common-expression-language (cel-rust underneath)
    is imported only by manifests that use deny_if."""
    import cel

    try:
        program = cel.compile(text)
    except Exception as e:  # noqa: BLE001 - the library raises ValueError; any failure is bad input
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        return None, f"the CEL expression does not compile: {first}"
    # only names the library saw too: the scan never invents one
    listed = set(program.variables())
    unknown = sorted(n for n in free_names(text) if n in listed)
    unknown = [n for n in unknown if n not in CEL_VARIABLES and n not in CEL_TYPE_NAMES]
    if unknown:
        return None, (f"the CEL expression names {', '.join(unknown)}; it can use "
                      f"{', '.join(sorted(CEL_VARIABLES))}")
    calls = sorted(f for f in program.functions() if _IDENT.fullmatch(f) and f not in CEL_FUNCTIONS)
    if calls:
        name = calls[0]
        return None, (f"the CEL expression calls {name}(), which CEL here does not have"
                      f"{did_you_mean(name, CEL_FUNCTIONS)} (it has: {', '.join(sorted(CEL_FUNCTIONS))})")
    return program, None


def free_names(text: str) -> set[str]:
    """The names `text` reads that no enclosing macro binds."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text) if m.lastgroup != "space"]
    free: set[str] = set()
    bound: list[tuple[str, int]] = []  # (name, depth of the macro's parenthesis)
    depth = 0
    for i, (kind, value) in enumerate(tokens):
        before = tokens[i - 1][1] if i else ""
        after = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct":
            if value in "([{":
                depth += 1
            elif value in ")]}":
                bound = [(n, d) for n, d in bound if d < depth]  # the macro's scope ends here
                depth -= 1
            continue
        if kind != "name" or before == "." or after == "(":
            continue  # a field, a method or a function
        if i >= 3 and tokens[i - 1][1] == "(" and tokens[i - 2][1] in MACROS and tokens[i - 3][1] == "." \
                and after == ",":
            bound.append((value, depth))  # the macro's variable: bound inside its parentheses
            continue
        if not any(n == value for n, _d in bound):
            free.add(value)
    return free
