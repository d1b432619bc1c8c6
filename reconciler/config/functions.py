"""Functions inside `${...}`: `${range(50)}`, `${format("shard-%03d", each.value)}`,
`${lower(var.team)}`, `${file("keys/deploy.pub")}`.

Arguments are literals ("text", 'text', 12, 1.5, true, false, null, [a, b], {"k": v}),
the values expressions read (env.X, var.X, each.key, each.value.x, count.index) and other
calls. Evaluated at load, like ${var.X}: a resource reference (known only after apply) is
not an argument. A wrong name, arity or type is one message naming the function.

| function | gives |
|---|---|
| range(n), range(a, b), range(a, b, step) | [0..n-1], [a..b-1]: `for_each: ${range(50)}` makes 50 instances |
| format(fmt, args...) | printf-style: format("gpu-%02d", 3) = "gpu-03" (%s %d %f %x %%) |
| lower(s), upper(s) | the string in lower / upper case |
| replace(s, old, new) | every `old` in s replaced by `new` |
| join(sep, list), split(sep, s) | list -> string, string -> list |
| keys(map), values(map) | a mapping's keys (sorted) / values (in key order) |
| length(x) | items in a list or mapping, characters in a string |
| merge(map, ...), concat(list, ...) | later keys win / lists one after another |
| lookup(map, key, default) | map[key], or default when the key is absent |
| coalesce(a, ...) | the first argument that is neither null nor "" |
| file(path) | a text file's content, beside the manifest (confined like every local read) |

Limits (each a one-line error): range() gives at most 10,000 numbers; a string a function
makes is at most 1,000,000 characters, like a manifest's own; a format() width or precision
is at most 10,000; a number literal has at most 100 digits.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from reconciler.config.model import Ref, Template
from reconciler.config.yamlread import MAX_STRING

# Limits: a function's result is held to what a manifest could say itself, and refused
# before it is built (format("%0900000000d", 1) was a 900 MB string)
MAX_RANGE = 10_000  # numbers from range(): for_each: ${range(n)} plans n instances
MAX_TEXT = MAX_STRING  # characters in a string a function makes, as in a manifest's own strings
MAX_WIDTH = 10_000  # a format() width or precision
MAX_DIGITS = 100  # in a number literal (Python refuses int() past 4,300 digits, with a ValueError)
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
_TOKEN = re.compile(r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?)
                        |(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*|\[[^\[\]]*\])*)
                        |(?P<punct>[(),\[\]{}:]))""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\"}


class FunctionError(ValueError):
    pass


def evaluate(expr: str, scope: Any, read: Callable[[str, Any], Any]) -> Any:
    """The value of `expr` (a call, possibly nested). read(path, scope) evaluates a plain
    expression and raises the caller's own error on a bad one; FunctionError otherwise."""
    try:
        tokens = _tokens(expr)
        parser = _Parser(tokens, lambda path: read(path, scope), getattr(scope, "base_dir", None),
                         getattr(scope, "files_read", None))
        value = parser.expression()
        if parser.at < len(tokens):
            raise FunctionError(f"unexpected {tokens[parser.at][1]!r} after the expression")
        return value
    except FunctionError as e:
        raise FunctionError(f"${{{expr}}}: {e}") from None


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, at = [], 0
    expr = expr.rstrip()
    while at < len(expr):
        m = _TOKEN.match(expr, at)
        if m is None or m.end() == at:
            raise FunctionError(f"cannot read {expr[at:at + 20].strip()!r}")
        kind = next(k for k in ("string", "number", "name", "punct") if m.group(k) is not None)
        out.append((kind, m.group(kind)))
        at = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], read: Callable[[str], Any], base_dir: str | None,
                 files_read: list | None = None):
        self.tokens, self.at, self.read, self.base_dir = tokens, 0, read, base_dir
        self.files_read = files_read

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, text: str) -> None:
        tok = self._peek()
        if tok is None or tok[1] != text:
            raise FunctionError(f"expected {text!r}, found {tok[1] if tok else 'the end'!r}")
        self.at += 1

    def expression(self) -> Any:
        tok = self._peek()
        if tok is None:
            raise FunctionError("an argument is missing")
        kind, text = tok
        self.at += 1
        if kind == "string":
            return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])
        if kind == "number":
            digits = sum(c.isdigit() for c in text)
            if digits > MAX_DIGITS:
                raise FunctionError(f"a number of {digits:,} digits; the limit is {MAX_DIGITS}")
            return float(text) if "." in text else int(text)
        if kind == "punct":
            if text == "[":
                return self._items("]")
            if text == "{":
                return self._mapping()
            raise FunctionError(f"unexpected {text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        nxt = self._peek()
        if nxt is not None and nxt[1] == "(":
            self.at += 1
            return call(text, self._items(")"), self.base_dir, self.files_read)
        value = self.read(text)
        if isinstance(value, (Ref, Template)):
            when = "at plan time" if text.startswith("lookup.") else "after apply"
            raise FunctionError(f"{text} is known only {when}; a function's arguments must be known when the "
                                "manifests are read")
        return value

    def _items(self, close: str) -> list[Any]:
        items: list[Any] = []
        while True:
            tok = self._peek()
            if tok is not None and tok[1] == close:
                self.at += 1
                return items
            if items:
                self._take(",")
            items.append(self.expression())

    def _mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            tok = self._peek()
            if tok is not None and tok[1] == "}":
                self.at += 1
                return out
            if out:
                self._take(",")
            key = self.expression()
            if not isinstance(key, str):
                raise FunctionError("mapping keys are strings")
            self._take(":")
            out[key] = self.expression()


# -- the functions ------------------------------------------------------------------------
def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "number", float: "number", list: "list", dict: "mapping",
            type(None): "null"}.get(type(value), type(value).__name__)


def _want(name: str, args: list[Any], *types: str, more: str | None = None, least: int | None = None) -> list[Any]:
    """Check arity and argument types: `types` for the fixed ones, `more` for the rest."""
    least = len(types) if least is None else least
    if len(args) < least or (more is None and len(args) > len(types)):
        count = f"{least}" if more is None and least == len(types) else f"{least} or more" if more else \
            f"{least} to {len(types)}"
        raise FunctionError(f"{name}() takes {count} argument{'s' if count != '1' else ''}, got {len(args)}")
    for i, arg in enumerate(args):
        want = types[i] if i < len(types) else more
        if want and want != "any" and _type(arg) not in want.split("|"):
            raise FunctionError(f"{name}(): argument {i + 1} must be a {want.replace('|', ' or ')}, "
                                f"got a {_type(arg)}")
    return args


def _range(args: list[Any]) -> list[int]:
    _want("range", args, "number", "number", "number", least=1)
    if any(isinstance(a, float) for a in args):
        raise FunctionError("range() takes whole numbers")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    if step == 0:
        raise FunctionError("range(): the step cannot be 0")
    count = max(0, -((start - stop) // step))  # counted, not built: len(range(10**26)) overflows
    if count > MAX_RANGE:
        raise FunctionError(f"range() of {count:,} numbers; the limit is {MAX_RANGE:,}")
    return list(range(start, stop, step))


def _format(args: list[Any]) -> str:
    _want("format", args, "string", more="string|number|boolean|null")
    values = iter(args[1:])
    padding = 0
    for m in _CONVERSION.finditer(args[0]):  # widths and precisions, written out or given by '*'
        for what, written in (("width", m[1]), ("precision", m[2])):
            size = next(values, 0) if written == "*" else int(written or 0)
            if isinstance(size, int) and abs(size) > MAX_WIDTH:
                raise FunctionError(f"format(): a {what} of {abs(size):,}; the limit is {MAX_WIDTH:,}")
            padding += abs(size) if isinstance(size, int) else 0
        if m[3] != "%":
            next(values, None)
    # at most this long: checked before it is built (one long variable, given 1,000 times)
    most = len(args[0]) + padding + sum(len(str(a)) for a in args[1:])
    if most > MAX_TEXT:
        raise FunctionError(f"format() could make a string of {most:,} characters; the limit is {MAX_TEXT:,}")
    try:
        return _bounded("format", str(args[0] % tuple(args[1:])))
    except (TypeError, ValueError, OverflowError) as e:
        raise FunctionError(f"format(): {e}") from None


def _bounded(name: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise FunctionError(f"{name}() made a string of {len(text):,} characters; the limit is {MAX_TEXT:,}")
    return text


def _replace(args: list[Any]) -> str:
    text, old, new = _want("replace", args, "string", "string", "string")
    times = len(text) + 1 if old == "" else text.count(old)
    size = len(text) + times * (len(new) - len(old))
    if size > MAX_TEXT:  # refused before it is built: nested replace() grows geometrically
        raise FunctionError(f"replace() would make a string of {size:,} characters; the limit is {MAX_TEXT:,}")
    return text.replace(old, new)


def _join(args: list[Any]) -> str:
    sep, items = _want("join", args, "string", "list")
    texts = [v if isinstance(v, str) else _text(v, "join") for v in items]
    size = sum(map(len, texts)) + len(sep) * max(0, len(texts) - 1)
    if size > MAX_TEXT:
        raise FunctionError(f"join() would make a string of {size:,} characters; the limit is {MAX_TEXT:,}")
    return sep.join(texts)


def _coalesce(args: list[Any]) -> Any:
    _want("coalesce", args, more="any", least=1)
    return next((a for a in args if a is not None and a != ""), None)


def _file(args: list[Any], base_dir: str | None, files_read: list | None) -> str:
    from pathlib import Path

    from reconciler.config.localfiles import read_text

    _want("file", args, "string")
    if not args[0].strip():  # else it resolves to the folder itself: "outside the manifest folder"
        raise FunctionError(f"file() needs a path to a file beside the manifest, got {args[0]!r}")
    try:
        text = read_text(base_dir or ".", args[0])
        if files_read is not None:
            files_read.append(str((Path(base_dir or ".") / args[0]).resolve()))
        return text
    except ValueError as e:
        raise FunctionError(f"file(): {e}") from None


_TABLE: dict[str, Callable[[list[Any]], Any]] = {
    "range": _range,
    "format": _format,
    "lower": lambda a: _want("lower", a, "string")[0].lower(),
    "upper": lambda a: _want("upper", a, "string")[0].upper(),
    "replace": _replace,
    "join": _join,
    "split": lambda a: _split(*_want("split", a, "string", "string")),
    "keys": lambda a: sorted(_want("keys", a, "mapping")[0]),
    "values": lambda a: [a[0][k] for k in sorted(_want("values", a, "mapping")[0])],
    "length": lambda a: len(_want("length", a, "string|list|mapping")[0]),
    "merge": lambda a: {k: v for m in _want("merge", a, more="mapping", least=1) for k, v in m.items()},
    "concat": lambda a: [v for lst in _want("concat", a, more="list", least=1) for v in lst],
    "lookup": lambda a: _lookup(_want("lookup", a, "mapping", "string", "any", least=2)),
    "coalesce": _coalesce,
}
NAMES = sorted([*_TABLE, "file"])


def _text(value: Any, name: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FunctionError(f"{name}(): a list item is a {_type(value)}, not a string or number")


def _split(sep: str, text: str) -> list[str]:
    return text.split(sep) if sep else list(text)


def _lookup(args: list[Any]) -> Any:
    mapping, key = args[0], args[1]
    if key in mapping:
        return mapping[key]
    if len(args) == 3:
        return args[2]
    raise FunctionError(f"lookup(): no key {key!r} (it has: {', '.join(map(str, mapping)) or 'none'}); "
                        "give a default as the third argument")


def call(name: str, args: list[Any], base_dir: str | None = None, files_read: list | None = None) -> Any:
    if name == "file":
        return _file(args, base_dir, files_read)
    fn = _TABLE.get(name)
    if fn is None:
        from reconciler.config.hints import did_you_mean
        raise FunctionError(f"no function {name}(){did_you_mean(name, NAMES)} (there are: {', '.join(NAMES)})")
    return fn(args)
