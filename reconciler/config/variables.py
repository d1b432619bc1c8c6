"""Variables: how a manifest declares them and where their values come from.

Declared under `variables:`, short or long:

    variables:
      team: vision                       # a plain value is the default
      shards: [p0, p1]
      token: {type: string, sensitive: true, description: "..."}   # long form; no default:
                                                                    # a value must come from outside
A mapping whose keys are only `default`, `description`, `type` and `sensitive` is the long
form (a plain mapping default with those keys: write it as `{default: {...}}`).

Values from outside, lowest precedence first: the manifest's default, the environment
(`RECONCILER_VAR_<NAME>`), var files (`--var-file`, in order), `--var NAME=VALUE` (in
order), and last the values a saved plan recorded. Text from the environment and `--var`
is read as YAML (`[p0, p1]` is a list), except for a variable of type string, which keeps
the text as written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from reconciler.config.hints import did_you_mean
from reconciler.config.model import Position
from reconciler.errors import Problem

ENV_PREFIX = "RECONCILER_VAR_"
LONG_KEYS = frozenset({"default", "description", "type", "sensitive"})
TYPES = ("string", "number", "boolean", "list", "map")
MASK = "(sensitive)"


class InputProblem(Problem):
    """A problem with a value given on the command line or in the environment: there is
    no file line to point at, so the line names the flag or variable instead."""

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


@dataclass
class Declaration:
    name: str
    position: Position
    default: Any = None
    has_default: bool = False
    type: str | None = None
    sensitive: bool = False
    description: str = ""
    default_position: Position | None = None


@dataclass
class Given:
    """A value from outside the manifest, and where it came from (for messages)."""

    value: Any
    origin: str  # "--var team", "RECONCILER_VAR_team", "vars.yaml"
    position: Position | None = None  # in a var file


MAX_VAR_FILE_BYTES = 10 * 1024 * 1024  # as a manifest file


@dataclass
class Inputs:
    """What the command line says about variables."""

    var_files: list[str] = field(default_factory=list)
    var_args: list[str] = field(default_factory=list)  # "NAME=VALUE"
    recorded: dict[str, Any] | None = None  # from a saved plan (see record())
    pin: Callable[[Any], str] | None = None  # the saved plan's pin, to compare sensitive values


def is_long_form(block: Any) -> bool:
    return isinstance(block, dict) and bool(block) and LONG_KEYS.issuperset(block)


def declare(name: str, block: Any, position: Position, positions: Mapping[str, Position],
            problems: list[Problem]) -> Declaration:
    """A declaration from its `variables:` entry. positions: relative to the entry."""
    if not is_long_form(block):
        return Declaration(name, position, block, True, default_position=position)
    decl = Declaration(name, position, block.get("default"), "default" in block,
                       default_position=positions.get("default", position))
    where = f"variables.{name}"
    kind = block.get("type")
    if kind is not None:
        if kind in TYPES:
            decl.type = kind
        else:
            pos = positions.get("type", position)
            problems.append(Problem(pos.file, pos.line, pos.column, f"{where}.type",
                                    f"{kind!r} is not a type; use one of {', '.join(TYPES)}"))
    sensitive = block.get("sensitive", False)
    if isinstance(sensitive, bool):
        decl.sensitive = sensitive
    else:
        pos = positions.get("sensitive", position)
        problems.append(Problem(pos.file, pos.line, pos.column, f"{where}.sensitive",
                                "expected true or false"))
    description = block.get("description")
    decl.description = description if isinstance(description, str) else ""
    return decl


def type_problem(value: Any, kind: str | None, sensitive: bool) -> str | None:
    """Why `value` is not of the declared type, or None. Never shows a sensitive value."""
    if kind is None:
        return None
    ok = {"string": isinstance(value, str),
          "number": isinstance(value, (int, float)) and not isinstance(value, bool),
          "boolean": isinstance(value, bool),
          "list": isinstance(value, list),
          "map": isinstance(value, dict)}[kind]
    if ok:
        return None
    got = describe_type(value)
    shown = "" if sensitive or isinstance(value, (dict, list)) or value is None else f" {_short(value)}"
    return f"expected a {kind}, got {got}{shown}"


# a YAML value's type by its JSON name; bool before int, which it subclasses
_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "list"), (dict, "mapping"))


def json_type(value: Any) -> str:
    """"null", "boolean", "integer", "number", "string", "list", "mapping" (as a schema says)."""
    if value is None:
        return "null"
    return next((name for t, name in _TYPES if isinstance(value, t)), type(value).__name__)


def describe_type(value: Any) -> str:
    """As a message says it: "a number" (an integer too), "a list", "null"."""
    name = json_type(value)
    name = "number" if name == "integer" else name
    return f"a {name}" if name in {n for _, n in _TYPES} else name


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_text(text: str, declared: Declaration, origin: str) -> Any:
    """A value given as text: YAML, unless the variable is a string (or the text is not
    YAML, e.g. an unquoted string with a colon: then the text as written)."""
    if declared.type == "string":
        return text
    from reconciler.config.yamlread import read_documents

    found: list[Problem] = []
    docs = read_documents(text, origin, found)
    if found or len(docs) > 1:
        return text
    return docs[0].value if docs else None


def given_values(inputs: Inputs | None, env: Mapping[str, str], declared: Mapping[str, Declaration],
                 problems: list[Problem]) -> dict[str, Given]:
    """Each declared variable's value from outside the manifest, by precedence."""
    out: dict[str, Given] = {}
    for name, decl in declared.items():
        origin = ENV_PREFIX + name
        if origin in env:
            out[name] = Given(_parse_text(env[origin], decl, origin), origin)
    if inputs is None:
        return out
    for path in inputs.var_files:
        out.update(_var_file(path, declared, problems))
    for arg in inputs.var_args:
        name, sep, text = arg.partition("=")
        name = name.strip()
        origin = f"--var {name}"
        if not sep or not name:
            problems.append(InputProblem("--var", 0, 0, arg.split("=")[0][:40],
                                         "expected NAME=VALUE (e.g. --var team=vision)"))
            continue
        if name not in declared:
            problems.append(InputProblem("--var", 0, 0, name, f"no variable '{name}' is declared under "
                                         "variables:" + did_you_mean(name, declared)))
            continue
        out[name] = Given(_parse_text(text, declared[name], origin), origin)
    for name, value in (inputs.recorded or {}).items():
        if name in declared and not _is_digest(value):
            out[name] = Given(value, "the saved plan")
    return out


def _var_file(path: str, declared: Mapping[str, Declaration], problems: list[Problem]) -> dict[str, Given]:
    from reconciler.config.yamlread import read_documents

    from reconciler.config.boundedread import Refused, read_bytes

    try:
        text = read_bytes(path, MAX_VAR_FILE_BYTES).decode("utf-8-sig")
    except Refused as e:
        problems.append(Problem(path, 1, 1, "", f"the var file {e}"))
        return {}
    except (OSError, UnicodeDecodeError) as e:
        problems.append(Problem(path, 0, 0, "", f"cannot read the var file: {getattr(e, 'strerror', None) or e}"))
        return {}
    before = len(problems)
    docs = [d for d in read_documents(text, path, problems) if d.value is not None]
    if len(problems) > before:
        return {}
    if not docs:
        return {}
    if len(docs) > 1 or not isinstance(docs[0].value, dict):
        d = docs[-1] if len(docs) > 1 else docs[0]
        problems.append(Problem(path, d.position.line, d.position.column, "",
                                "a var file is one mapping of variable names to values"))
        return {}
    doc = docs[0]
    out: dict[str, Given] = {}
    for name, value in doc.value.items():
        pos = doc.positions.get(name, doc.position)
        if name not in declared:
            problems.append(Problem(path, pos.line, pos.column, name, f"no variable '{name}' is declared "
                                    "under variables:" + did_you_mean(name, declared)))
            continue
        out[name] = Given(value, path, pos)
    return out


# -- what a saved plan records ----------------------------------------------------------------
PIN = "$pin"  # a sensitive variable's keyed hash (the key is never in the plan file)
UNPINNED = "$unpinned"  # a sensitive variable recorded without a key: not compared at apply


def _is_digest(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (PIN in value or UNPINNED in value)


def record(values: Mapping[str, Any], sensitive: set[str] | frozenset,
           pin: Callable[[Any], str] | None) -> dict[str, Any]:
    """The resolved values for a plan file: plain, or where sensitive a pin under the plan
    key (`pin`; None: no key was configured, so the value is only said to be unpinned)."""
    out: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        if name in sensitive:
            out[name] = {PIN: pin(value)} if pin is not None else {UNPINNED: True}
        else:
            out[name] = value
    return out


def recorded_mismatches(recorded: Mapping[str, Any], values: Mapping[str, Any],
                        pin: Callable[[Any], str] | None) -> list[str]:
    """Sensitive variables whose value now differs from the one the plan was made with."""
    out = []
    for name, saved in recorded.items():
        if not (_is_digest(saved) and PIN in saved):
            continue
        if name not in values or pin is None or pin(values[name]) != saved[PIN]:
            out.append(name)
    return out


__all__ = ["Declaration", "Given", "Inputs", "InputProblem", "declare", "given_values", "type_problem",
           "record", "recorded_mismatches", "is_long_form", "json_type", "describe_type", "ENV_PREFIX", "MASK"]
