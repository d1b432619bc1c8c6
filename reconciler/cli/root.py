"""The root click group and its global options."""
from __future__ import annotations

import logging
import os
import sys

import click


class Globals:
    """Options every command sees (click's ctx.obj)."""

    def __init__(self, sandbox: bool, state: str | None, color: bool, debug: bool):
        self.sandbox = sandbox
        self.state = state
        self.color = color
        self.debug = debug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sandbox", is_flag=True, help="Run against a built-in emulator of the three APIs.")
@click.option("--state", "state", metavar="PATH|URL",
              help="State location: a file path or postgresql://... (default .reconciler/state.json).")
@click.option("--no-color", is_flag=True, help="Plain output (also NO_COLOR).")
@click.option("--debug", is_flag=True, help="Log HTTP requests (credentials redacted) to stderr.")
@click.version_option(package_name="reconciler")
@click.pass_context
def main(ctx: click.Context, sandbox: bool, state: str | None, no_color: bool, debug: bool) -> None:
    """Declarative infrastructure for VALDI, Valohai and Code Ocean."""
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry raw URLs
        logging.getLogger("httpcore").setLevel(logging.WARNING)
    ctx.obj = Globals(sandbox=sandbox, state=state, color=color, debug=debug)
