"""`reconciler state unlock | history | migrate`: the commands shared state needs."""
from __future__ import annotations

import os

import click

from reconciler.cli.root import Globals
from reconciler.cli.state_cmds import on_state, state, state_store


@state.command(name="unlock")
@click.argument("lock_id")
@on_state
def unlock_cmd(g: Globals, lock_id: str, paths: tuple[str, ...]) -> None:
    """Release a lock left by a killed run (PostgreSQL: ends the session holding it)."""
    state_store(g, paths).unlock(lock_id)
    click.echo(f"Released lock {lock_id}.")


@state.command(name="history")
@click.option("--limit", default=20, show_default=True, help="Show the newest this many serials.")
@on_state
def history_cmd(g: Globals, limit: int, paths: tuple[str, ...]) -> None:
    """Past serials of the state: when, who, which command, what changed (PostgreSQL)."""
    from reconciler.errors import StateError

    store = state_store(g, paths)
    if not hasattr(store, "history"):
        raise StateError(f"{store.location} keeps no history; a PostgreSQL state does")
    rows = store.history(limit)
    for i, row in enumerate(rows):
        older = rows[i + 1]["addresses"] if i + 1 < len(rows) else []
        added = sorted(set(row["addresses"]) - set(older))
        removed = sorted(set(older) - set(row["addresses"]))
        delta = " ".join([f"+{a}" for a in added] + [f"-{a}" for a in removed])
        click.echo(f"serial {row['serial']}\t{row['at']}\t{row['who']}\t{row['command']}\t{delta}".rstrip())


@state.command(name="migrate")
@click.option("--to", "target", required=True, metavar="URL|PATH", help="Where to move the state.")
@on_state
def migrate_cmd(g: Globals, target: str, paths: tuple[str, ...]) -> None:
    """Move the state to another store without changing it (lineage, serial, content)."""
    from reconciler.errors import StateError
    from reconciler.state.local import LocalStateStore
    from reconciler.state.select import open_location

    source = state_store(g, paths)
    dest = open_location(target, os.environ)
    with source.lock("state migrate"), dest.lock("state migrate"):
        doc = source.read()
        if doc.serial == 0:
            raise StateError(f"{source.location} holds no state to migrate")
        existing = dest.read()
        if existing.serial and existing.lineage != doc.lineage:
            raise StateError(f"{dest.location} already holds a different state (lineage {existing.lineage}); "
                             "nothing was moved")
        dest.replace_all(doc)
        retired = source.retire() if isinstance(source, LocalStateStore) else None
    click.echo(f"Moved the state (lineage {doc.lineage}, serial {doc.serial}) from {source.location} "
               f"to {dest.location}. Point --state, RECONCILER_STATE or the manifests' backend: at it from now on."
               + (f" The old file is now {retired.name}; plans refuse to read {source.location} while it is there."
                  if retired else ""))
