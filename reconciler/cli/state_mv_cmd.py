"""`reconciler state mv FROM TO`: the object the state knows as FROM is managed as TO from
now on; nothing in the services changes. The same renames `moved:` entries make at plan
time (a block to an instance, an instance to another, a for_each block's every key)."""
from __future__ import annotations

import click

from reconciler.cli.root import Globals
from reconciler.cli.state_cmds import on_state, state, state_store
from reconciler.config.moved import ADDRESS


@state.command(name="mv")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@on_state
def mv_cmd(g: Globals, source: str, target: str, paths: tuple[str, ...]) -> None:
    """Manage the object recorded as FROM under the address TO (no API call)."""
    from reconciler.engine import moves
    from reconciler.errors import StateError

    for end in (source, target):
        if not ADDRESS.fullmatch(end):
            raise StateError(f"{end!r} is not a resource address (kind.name or kind.name[key])")
    if source == target:  # before the state is read: "already in the state; state rm it" would mislead
        raise StateError(f"FROM and TO are the same address ({source}): nothing to move")
    store = state_store(g, paths)
    with store.lock("state mv"):
        doc = store.read()
        renamed = moves.checked(doc, source, target)
        moves.rename(doc, renamed)
        store.write(doc)
    for old, new in renamed:
        click.echo(f"Moved {old} to {new}.")
    click.echo("The live objects were not touched; move the blocks in the manifests to match.")
