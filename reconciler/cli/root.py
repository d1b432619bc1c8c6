"""The root click group and its global options."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from reconciler.config.terminal import shown


class Globals:
    """Options every command sees (click's ctx.obj)."""

    def __init__(self, sandbox: bool, state: str | None, color: bool, debug: bool):
        self.sandbox = sandbox
        self.state = state
        self.color = color
        self.debug = debug


class RootGroup(click.Group):
    """Exit 1 on a usage error (click says 2), as Terraform does: 2 means only "changes
    present" (plan --detailed-exitcode, drift), so `|| test $? -eq 2` in a pipeline
    never lets a mistyped flag through."""

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        if args is None:  # the process's own command line: the run is the process's only one
            from reconciler.cli import collector

            collector.one_shot = True
        return super().main(args, *rest, **kwargs)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise _one_line(e) from None


def _one_line(e: click.UsageError) -> click.UsageError:
    """Exit 1, and shown as every other error is: `Error: ...` on one line (what was typed
    folded and escaped), then the hint; not click's usage line first, three lines in all."""
    e.exit_code = 1  # type: ignore[misc]  # click types it ClassVar; main() exits with the instance's
    if type(e).__name__ == "NoArgsIsHelpError":  # `reconciler` alone (click >= 8.2): the help, as it is
        return e

    def show(file: Any = None) -> None:
        click.echo(f"Error: {shown(e.format_message(), one_line=True)}", err=file is None, file=file)
        if e.ctx is not None and e.ctx.command.get_help_option(e.ctx) is not None:
            option = max(e.ctx.command.get_help_option_names(e.ctx), key=len)
            click.echo(f"Try '{e.ctx.command_path} {option}' for help.", err=file is None, file=file)

    e.show = show  # type: ignore[method-assign]
    return e


EXIT_CODES = """\b
Exit codes:
  0  success, or no changes
  1  an error, including a usage error (an unknown command, flag or value)
  2  changes present (plan --detailed-exitcode), or drift (drift, watch --once)
  3  denied by policy: the plan cannot be applied (plan, apply, destroy, watch --once)"""


class Seconds(click.ParamType):
    """A number of seconds above 0 and at most a day (a trailing 's' allowed): nan, inf
    and 1e400 are refused, not taken as 'never give up'."""

    name = "seconds"
    LIMIT = 86400.0

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        why = self.problem(value)
        if why:
            self.fail(why, param, ctx)
        return float(str(value).strip().removesuffix("s"))

    @classmethod
    def problem(cls, value: Any) -> str | None:
        import math

        try:
            seconds = float(str(value).strip().removesuffix("s"))
        except ValueError:
            seconds = math.nan
        if not (0 < seconds <= cls.LIMIT):  # nan compares false: refused too
            return f"'{shown(str(value), one_line=True)}' is not a number of seconds above 0 and at most {cls.LIMIT:g}"
        return None


def _check_env_deadline() -> None:
    """RECONCILER_CALL_DEADLINE held to --call-deadline's rule (budget.py used to take a
    bad value silently as the default); budget reads it itself, per call."""
    from reconciler.providers.budget import DEADLINE_ENV

    raw = os.environ.get(DEADLINE_ENV, "")
    why = Seconds.problem(raw) if raw else None
    if why:
        raise click.ClickException(f"{DEADLINE_ENV}: {why}")


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.option("--sandbox", is_flag=True, help="Run against a built-in emulator of the three APIs.")
@click.option("--state", "state", metavar="PATH|URL",
              help="State location: a file path or postgresql://... (default .reconciler/state.json).")
@click.option("--no-color", is_flag=True, help="Plain output (also NO_COLOR).")
@click.option("--debug", is_flag=True, help="Log HTTP requests (credentials redacted) to stderr.")
@click.option("--call-deadline", type=Seconds(), metavar="SECONDS",
              help="How long one API call may go on retrying (default 60; also RECONCILER_CALL_DEADLINE).")
@click.version_option(package_name="reconciler")
@click.pass_context
def main(ctx: click.Context, sandbox: bool, state: str | None, no_color: bool, debug: bool,
         call_deadline: float | None) -> None:
    """Declarative infrastructure for VALDI, Valohai and Code Ocean."""
    # NO_COLOR set to anything but the empty string (no-color.org): an empty one keeps colour
    color = not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
    ctx.obj = Globals(sandbox=sandbox, state=state, color=color, debug=debug)
    from reconciler.providers import budget, http

    if call_deadline is None:
        _check_env_deadline()
    budget.set_deadline(call_deadline)
    if sys.stderr.isatty() and _show_retry not in http.retry_hooks():
        http.add_retry_hook(_show_retry)
    if debug:
        _start_debug_log()


def _show_retry(api: str, endpoint: str, cause: str, attempt: int, delay: float) -> None:
    """A retry on a terminal: one progress line (its cause is in --debug's log too)."""
    click.echo(f"    {api} {endpoint}: {shown(cause, one_line=True)}; retrying in {delay:.0f}s (attempt {attempt})", err=True)


def _start_debug_log() -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry raw URLs
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _late_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    found = ctx.find_object(Globals) if value else None
    if found is not None:
        found.color = False


def _late_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    g = ctx.find_object(Globals)
    if value and g is not None and not g.debug:
        g.debug = True
        _start_debug_log()


def _late_sandbox(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    g = ctx.find_object(Globals)
    if value and g is not None:
        g.sandbox = True


def accept_global_flags_after_commands(group: click.Group) -> None:
    """`reconciler plan x/ --no-color` as well as `reconciler --no-color plan x/`: every
    command also takes the global flags that need no value (`state list x/ --sandbox`
    reads the sandbox's state, as `--sandbox state list x/` does)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            accept_global_flags_after_commands(command)
            continue
        names = {p.name for p in command.params}
        if "no_color" not in names:
            command.params.append(click.Option(["--no-color"], is_flag=True, expose_value=False, is_eager=True,
                                               callback=_late_no_color, help="Plain output (also NO_COLOR)."))
        if "sandbox" not in names:
            command.params.append(click.Option(["--sandbox"], is_flag=True, expose_value=False, is_eager=True,
                                               callback=_late_sandbox,
                                               help="The sandbox's state and emulator (as before the command)."))
        if "debug" not in names:
            command.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                                               callback=_late_debug, help="Log HTTP requests (redacted)."))
