"""Guardrail commands: `reconciler extend ADDR DURATION [PATHS...]` moves an `expires:`
deadline (a resource an expiry destroyed is brought back by the next apply);
`reconciler state events` lists what the state recorded: policy overrides (who, which,
why), extends and expiries."""
from __future__ import annotations

import click

from reconciler.cli import common
from reconciler.cli.common import guarded, open_store, parse_duration, sandbox_option
from reconciler.cli.root import Globals, main
from reconciler.cli.state_cmds import on_state, state, state_store


@main.command()
@click.argument("address")
@click.argument("duration")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--lock-timeout", default="0s", callback=common.duration_option,
              help="Wait this long for the state lock (e.g. 30s).")
@sandbox_option(hidden=True)  # the sandbox's own state file; no API call is made
@click.pass_obj
@guarded
def extend(g: Globals, address: str, duration: str, paths: tuple[str, ...], lock_timeout: str) -> None:
    """Give ADDR more time before its `expires:` action (DURATION: 30m, 8h, 2d)."""
    from reconciler.config import durations
    from reconciler.engine import expiry

    by = durations.parse(duration)
    if by is None or by.total_seconds() <= 0:
        why = durations.problem(duration, "30m, 8h, 2d") or "expected a duration longer than 0s, like 30m"
        raise click.BadParameter(why, param_hint="DURATION")
    store = open_store(g, list(paths) or ["."])
    with store.lock("extend", timeout=parse_duration(lock_timeout)):
        state = store.read()
        said = expiry.extend(state, address, by, common.clock())
        store.write(state)
    click.echo(said)


@state.command(name="events")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@sandbox_option(hidden=True)
@on_state
def events_cmd(g: Globals, as_json: bool, paths: tuple[str, ...]) -> None:
    """Guardrail events, oldest first: policy overrides, extends, expiries."""
    import json

    from reconciler.config.sensitivity import scrub
    from reconciler.config.terminal import json_line, shown

    # a reason and a name are the user's text, read back from a state anyone could have edited
    for event in state_store(g, paths).read().events:
        if as_json:
            click.echo(json_line(scrub(json.dumps(event, sort_keys=True))))
            continue
        rest = {k: v for k, v in event.items() if k not in ("at", "who", "event")}
        said = " ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in rest.items())
        click.echo("\t".join(shown(str(part), one_line=True)
                             for part in (event.get("at"), event.get("who"), event.get("event"), said)))
