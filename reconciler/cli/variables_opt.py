"""`--var NAME=VALUE` and `--var-file FILE` on the commands that read manifests.

The values are kept on the command's Globals (ctx.obj) and read by `workspace()` when the
manifests load; a saved plan's recorded values are put there by `apply PLANFILE`."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from reconciler.config.variables import Inputs

FC = TypeVar("FC", bound=Callable[..., Any])  # a click command function


def inputs_of(g: Any) -> Inputs:  # a Globals (cli.root imports this module)
    """The variable inputs of this run (created on first use)."""
    if getattr(g, "var_inputs", None) is None:
        g.var_inputs = Inputs()
    return g.var_inputs


def current_inputs() -> Inputs | None:
    ctx = click.get_current_context(silent=True)
    g = ctx.obj if ctx is not None else None
    return getattr(g, "var_inputs", None)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
        if value and ctx.obj is not None:
            getattr(inputs_of(ctx.obj), attr).extend(value)
    return callback


def variable_options(fn: FC) -> FC:
    fn = click.option("--var", "var_args", multiple=True, metavar="NAME=VALUE", expose_value=False,
                      callback=_store("var_args"),
                      help="Set a variable (repeatable; VALUE is YAML: --var 'shards=[p0, p1]').")(fn)
    fn = click.option("--var-file", "var_files", multiple=True, metavar="FILE", expose_value=False,
                      callback=_store("var_files"),
                      help="Variables from a YAML mapping (repeatable; later files win, --var wins over all).")(fn)
    return fn
