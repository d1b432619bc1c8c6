"""`reconciler output [NAME] [PATHS...] [--json]`: the top-level outputs the last apply
kept in the state. No API call.

    reconciler output                    every output, a table; sensitive ones masked
    reconciler output trainer_ip         one raw value, for scripts: ssh root@$(reconciler output trainer_ip)
    reconciler output --json             every output as Terraform shapes it: {name: {value, sensitive,
                                         type}}, a sensitive value null unless --show-sensitive
    reconciler output NAME --json        one value as JSON

Asked for by name, a sensitive output is printed: the caller named what it wants.
The first argument is a NAME unless it is the only one and an existing file or folder.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import guarded, open_store, providers, sandbox_option
from reconciler.cli.root import Globals, main
from reconciler.cli.variables_opt import current_inputs, variable_options
from reconciler.config.terminal import escape
from reconciler.config.variables import MASK


def raw(value: Any) -> str:
    """A value as a script wants it: strings bare, everything else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def table(outputs: dict[str, dict]) -> str:
    if not outputs:
        return ""
    width = max(len(n) for n in outputs)
    lines = []
    for name, entry in sorted(outputs.items()):
        shown = MASK if entry.get("sensitive") else json.dumps(entry.get("value"), sort_keys=True)
        lines.append(f"{name.ljust(width)} = {shown}")
    return "\n".join(lines) + "\n"


def type_of(value: Any) -> Any:
    """Terraform's JSON type of a value: "string", "number", "bool", ["tuple", [...]],
    ["object", {...}] ("dynamic" for null), so a script reads outputs the same way."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return ["tuple", [type_of(v) for v in value]]
    if isinstance(value, dict):
        return ["object", {k: type_of(v) for k, v in sorted(value.items())}]
    return "dynamic"


def as_json_object(outputs: dict[str, dict], show_sensitive: bool) -> dict[str, dict]:
    return {n: {"value": e.get("value") if show_sensitive or not e.get("sensitive") else None,
                "sensitive": bool(e.get("sensitive")), "type": type_of(e.get("value"))}
            for n, e in sorted(outputs.items())}


def _split(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """NAME first unless the only argument is an existing file or folder: `output sub .`
    asks for the output `sub` even beside a folder named sub (an unknown name is an error,
    never an empty answer a script would take for the value)."""
    if args and (not Path(args[0]).exists() or (len(args) > 1 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args[0]))):
        return args[0], list(args[1:]) or ["."]
    return None, list(args) or ["."]


@main.command(name="output")
@click.argument("args", nargs=-1, metavar="[NAME] [PATHS]...")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: {name: {value, sensitive, type}} for every output, or NAME's value.")
@click.option("--show-sensitive", is_flag=True,
              help="With --json and no NAME: include sensitive values (null otherwise).")
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def output_cmd(g: Globals, args: tuple[str, ...], as_json: bool, show_sensitive: bool) -> None:
    """Print the outputs the last apply recorded (one raw value when NAME is given)."""
    from reconciler.engine.runner import load_workspace
    from reconciler.errors import StateError

    name, paths = _split(args)
    # the manifests say where the state is (a backend block); a missing variable does not matter here
    ws = load_workspace(paths, providers(), inputs=current_inputs(), require_values=False)
    doc = open_store(g, paths, ws.manifest.backend).read()
    if name is None:
        if as_json:
            click.echo(json.dumps(as_json_object(doc.outputs, show_sensitive), indent=2, sort_keys=True))
        elif doc.outputs:
            click.echo(table(doc.outputs), nl=False)
        else:
            click.echo("No outputs in the state: declare them under outputs: and apply.", err=True)
        return
    if name not in doc.outputs:
        known = ", ".join(sorted(doc.outputs)) or "none yet"
        declared = " (declared, not yet known: run apply)" if name in ws.manifest.outputs else ""
        raise StateError(f"no output '{name}' in the state{declared}; outputs: {known}")
    value = doc.outputs[name].get("value")
    text = json.dumps(value, sort_keys=True) if as_json else raw(value)
    # a script gets the value as it is; a terminal never gets a control sequence from it
    click.echo(escape(text) if sys.stdout.isatty() else text)
