"""What the command modules share: the sandbox, the state store, the workspace, the
error guard and the common options. Commands live in their own modules."""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, ParamSpec, TypeVar

import click

from reconciler.cli.policy_opt import current_policy_files, unknown_override
from reconciler.cli.root import Globals
from reconciler.cli.variables_opt import current_inputs
from reconciler.engine.clock import Clock, system_now
from reconciler.errors import PlanError, ReconcilerError
from reconciler.plan.model import Plan

if TYPE_CHECKING:
    from reconciler.engine.runner import Workspace
    from reconciler.state.base import StateStore

P = ParamSpec("P")
R = TypeVar("R")
FC = TypeVar("FC", bound=Callable[..., Any])  # a click command function


def manifest_root(paths: list[str]) -> Path:
    first = Path(paths[0]) if paths else Path(".")
    return first if first.is_dir() else first.parent


@contextlib.contextmanager
def sandbox(g: Globals, paths: list[str]) -> Iterator[None]:
    """--sandbox: an emulator in-process, its data under .reconciler/sandbox/, its
    credentials in the environment for this run."""
    if not g.sandbox:
        yield
        return
    from reconciler.emulator import EmulatorServer

    data = manifest_root(paths) / ".reconciler" / "sandbox"
    server = _sandbox_server(EmulatorServer, data)
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _sandbox_server(server_class: Any, data: Path) -> Any:
    """The sandbox of a folder answers on the same port every run (kept in data/port): the
    endpoints resolve to the same values, so a saved plan stays valid between
    `--sandbox plan -o` and `--sandbox apply PLANFILE`. A port taken since (another
    sandbox of this folder running) falls back to a free one, said on stderr."""
    port_file = data / "port"
    try:
        wanted = int(port_file.read_text().strip())
    except (OSError, ValueError):
        wanted = 0
    try:
        server = server_class(data_dir=data, port=wanted)
    except OSError:
        server = server_class(data_dir=data)
        click.echo(f"Note: the sandbox's port {wanted} is taken (another sandbox of this folder running?); "
                   f"this run uses {server.port}, so a plan saved on {wanted} will be refused as stale.", err=True)
    if server.port != wanted:
        data.mkdir(parents=True, exist_ok=True)
        port_file.write_text(f"{server.port}\n")
    return server.start()


def open_store(g: Globals, paths: list[str], backend: dict | None = None) -> StateStore:
    root = manifest_root(paths)
    flag = g.state
    if flag is None and g.sandbox and "RECONCILER_STATE" not in os.environ:
        flag = str(root / ".reconciler" / "sandbox" / "state.json")  # keep sandbox ids apart
    from reconciler.state.select import open_store as select

    return select(flag, os.environ, backend, root)


def invoked_flags(g: Globals) -> tuple[str, ...]:
    """The global flags that choose the services and the state, for commands a message
    offers to be run as printed (`reconciler --sandbox import ...`)."""
    return (*(["--sandbox"] if g.sandbox else []), *(["--state", g.state] if g.state else []))


def providers(names: set[str] | None = None) -> dict[str, Any]:
    from reconciler.providers import load_providers

    return load_providers(names)


clock: Clock = system_now  # "now" for expiry and schedules; tests put a clock of their own here


def workspace(paths: list[str]) -> Workspace:
    from reconciler.config.cache import ManifestCache
    from reconciler.engine.runner import load_workspace

    ws = load_workspace(paths, _provider_loader(), progress=lambda m: click.echo(f"    {_shown(m)}", err=True),
                        inputs=current_inputs(), policy_files=current_policy_files(), clock=lambda: clock(),
                        cache=ManifestCache.beside(paths or ["."]))
    ctx = click.get_current_context(silent=True)
    why = unknown_override(ctx.obj if ctx is not None else None, {p.name for p in ws.manifest.policies})
    if why:
        ws.close()
        raise PlanError(why)
    return ws


def _provider_loader() -> Callable[[set[str] | None], dict[str, Any]]:
    """providers() as a loader of the named providers only; a stand-in that takes no
    names (tests put one in) gives all of its providers."""
    import inspect

    if inspect.signature(providers).parameters:
        return providers
    return lambda names: providers()


def render(plan: Plan, fmt: str, color: bool) -> str:
    from reconciler import render as r
    from reconciler.config.terminal import escape_keeping_colors, json_line

    # every format is printed on a terminal: a value that slipped past its renderer's own
    # escaping (a live property name in a drift path) still cannot send a control sequence
    text = r.render(plan, fmt, color=color)
    return json_line(text) if fmt == "json" else escape_keeping_colors(text)


def fingerprint(attrs: dict) -> str:
    from reconciler.plan.planfile import fingerprint as fp

    return fp(attrs)


def parse_duration(text: str | None) -> float:
    if not text:
        return 0.0
    from reconciler.config.durations import MAX, MAX_SAID
    from reconciler.config.terminal import shown

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise click.BadParameter(f"'{shown(text, one_line=True)}' is not a duration like 30s, 2m, 1h")
    seconds = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if seconds > MAX.total_seconds():  # a sleep or a lock wait that long overflows the clock
        raise click.BadParameter(f"'{shown(text, one_line=True)}' is over the limit of {MAX_SAID}")
    return seconds


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The click callback of a duration option (--lock-timeout): a bad one is refused as
    the option is read, named, before anything is loaded."""
    try:
        parse_duration(value)
    except click.BadParameter as e:
        raise click.BadParameter(e.message, ctx, param) from None
    return value


def fail(message: str, code: int = 1) -> NoReturn:
    from reconciler.config.terminal import shown
    click.echo(f"Error: {shown(message)}", err=True)
    sys.exit(code)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Every known error becomes `Error: ...` and exit 1; no traceback unless --debug."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ReconcilerError as e:
            fail(_lines_of(e), getattr(e, "exit_code", 1))  # PolicyDenied: 3
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted")
        except Exception as e:  # noqa: BLE001
            g = click.get_current_context().obj
            if g is not None and g.debug:
                raise
            import httpx

            from reconciler.providers.http import describe_failure
            if isinstance(e, httpx.TransportError):  # a network failure is no internal error
                fail(describe_failure(e))
            fail(f"internal error: {e.__class__.__name__}: {e} (run with --debug for details)")
    return wrapper


def _lines_of(e: ReconcilerError) -> str:
    """The message as printed: one line, a value it echoes (an address or path typed with
    a newline in it) folded; only the errors that list one item per line keep their lines
    (a ManifestError folds each problem itself)."""
    from reconciler.errors import ApplyError, ManifestError, one_line

    return str(e) if isinstance(e, (ManifestError, PlanError, ApplyError)) else one_line(str(e))


def _set_sandbox(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and ctx.obj is not None:
        ctx.obj.sandbox = True


def sandbox_option(fn: FC | None = None, *, hidden: bool = False) -> Any:  # FC, or a decorator of one
    """`--sandbox` after the command too (`reconciler apply examples/ --sandbox`); hidden
    where a command makes no API call (accepted, so a script that passes it still runs)."""
    def decorate(f: FC) -> FC:
        return click.option("--sandbox", is_flag=True, expose_value=False, callback=_set_sandbox, hidden=hidden,
                            is_eager=True, help="Run against the built-in emulator.")(f)
    return decorate(fn) if fn is not None else decorate


def _addresses(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """--target / --exclude / --replace: each a resource address, checked as the option is
    read (before any API call; an unknown but well-formed one is the planner's to name)."""
    from reconciler.config.moved import ADDRESS
    from reconciler.config.terminal import shown

    for address in value:
        if not ADDRESS.fullmatch(address):
            flag = param.opts[0] if param.opts else str(param.name)
            raise click.UsageError(f"{flag} '{shown(address, one_line=True)}': not a resource address "
                                   "(kind.name, or kind.name[key] for one instance)", ctx)
    return value


def target_options(fn: FC) -> FC:
    fn = click.option("--target", "targets", multiple=True, metavar="ADDR", callback=_addresses,
                      help="Only this resource and what it depends on (repeatable).")(fn)
    fn = click.option("--exclude", "excludes", multiple=True, metavar="ADDR", callback=_addresses,
                      help="Everything but this resource and what depends on it (repeatable).")(fn)
    fn = click.option("--replace", "replace", multiple=True, metavar="ADDR", callback=_addresses,
                      help="Force replacement of this resource (repeatable).")(fn)
    return fn


def _shown(text: str) -> str:
    from reconciler.config.terminal import shown
    return shown(text)
