"""`reconciler state ...`: look at and edit what the state remembers."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import click

from reconciler.cli.root import Globals, main
from reconciler.config.sensitivity import mask_paths
from reconciler.config.terminal import shown

if TYPE_CHECKING:
    from reconciler.state.base import StateDoc, StateStore

R = TypeVar("R")


def state_store(g: Globals, paths: tuple[str, ...]) -> StateStore:
    """The state plan and apply would open: --state, RECONCILER_STATE, the manifests'
    `backend:`, then .reconciler/state.json beside them."""
    from reconciler.cli.common import open_store

    paths_l = list(paths) or ["."]
    return open_store(g, paths_l, manifest_backend(g, paths_l))


def manifest_backend(g: Globals, paths: list[str]) -> dict | None:
    """The manifests' `backend:` block when nothing stronger chooses the state. Only a
    folder without manifests has none: a state command must never edit a local file
    while the manifests keep their state elsewhere."""
    import os
    from pathlib import Path

    if g.state or g.sandbox or os.environ.get("RECONCILER_STATE"):
        return None
    if not any(Path(p).is_file() or any(Path(p).glob("*.y*ml")) for p in paths if Path(p).exists()):
        return None
    from reconciler.cli.variables_opt import current_inputs
    from reconciler.config.manifest import load_manifest

    return load_manifest(paths, os.environ, current_inputs(), require_values=False).backend


@main.group()
def state() -> None:
    """Inspect or edit the state (which live objects the manifests own)."""


def on_state(fn: Callable[..., R]) -> Callable[..., R]:
    """What every `state` subcommand takes last: PATHS (the manifest folders that name the
    backend; the current one by default) and the globals; errors as one line."""
    from reconciler.cli.common import guarded
    return click.argument("paths", nargs=-1, type=click.Path())(click.pass_obj(guarded(fn)))


def existing_state(g: Globals, paths: tuple[str, ...]) -> StateDoc:
    """The state, or one line saying there is none there: an empty listing would look like
    "nothing is managed" when the state is really somewhere else (--sandbox, --state)."""
    from reconciler.errors import StateError

    store = state_store(g, paths)
    doc = store.read()
    if doc.serial == 0 and not doc.resources and not doc.pending:
        raise StateError(f"no state at {store.location}: nothing has been applied with these manifests "
                         "(for the sandbox's state add --sandbox; another state: --state PATH|URL)")
    return doc


@state.command(name="list")
@on_state
def list_cmd(g: Globals, paths: tuple[str, ...]) -> None:
    """Every address the state manages, with its remote id."""
    doc = existing_state(g, paths)
    for address, rs in sorted(doc.resources.items()):
        flags = " (protected)" if rs.protected else ""
        click.echo(f"{address}\t{shown(str(rs.id), one_line=True)}{flags}")
    for address in sorted(doc.pending):
        click.echo(f"{address}\t(pending: a create was interrupted; the next plan looks it up)")


@state.command(name="show")
@click.argument("address")
@on_state
def show_cmd(g: Globals, address: str, paths: tuple[str, ...]) -> None:
    """One resource's state, secrets masked."""
    from reconciler.errors import StateError

    doc = existing_state(g, paths)
    rs = doc.resources.get(address)
    if rs is None:
        raise StateError(f"{address} is not in the state")
    body = {"address": address, "kind": rs.kind, "id": rs.id, "protected": rs.protected,
            "deletion_policy": rs.deletion_policy, "adopted": rs.adopted, "depends_on": rs.depends_on,
            "outputs": rs.outputs, "secrets": {k: "(sensitive)" for k in rs.secrets},
            "last_applied": mask_paths(_mask(rs.last_applied), rs.sensitive_paths)}
    click.echo(json.dumps(body, indent=2, sort_keys=True))


def _mask(value: Any) -> Any:
    from reconciler.config import walk
    from reconciler.config.sensitivity import secret_key

    return walk.masked(value, secret_key, "(sensitive)")


def _edit(g: Globals, paths: tuple[str, ...], address: str, change: Callable[[StateDoc], None]) -> None:
    from reconciler.errors import StateError

    store = state_store(g, paths)
    with store.lock("state edit"):
        doc = store.read()
        if address not in doc.resources and address not in doc.pending:
            raise StateError(f"{address} is not in the state")
        change(doc)
        store.write(doc)


@state.command(name="rm")
@click.argument("address")
@on_state
def rm_cmd(g: Globals, address: str, paths: tuple[str, ...]) -> None:
    """Stop managing ADDRESS without touching the live object."""
    def change(doc: StateDoc) -> None:
        doc.resources.pop(address, None)
        doc.pending.pop(address, None)
    _edit(g, paths, address, change)
    click.echo(f"Removed {address} from the state; the live object was not touched.")


@state.command(name="unprotect")
@click.argument("address")
@on_state
def unprotect_cmd(g: Globals, address: str, paths: tuple[str, ...]) -> None:
    """Lift prevent_destroy remembered for ADDRESS, so a plan may destroy it."""
    def change(doc: StateDoc) -> None:
        from reconciler.errors import StateError

        if address not in doc.resources:  # only a journaled create: nothing was protected yet
            raise StateError(f"{address} is a create that did not finish (pending), not a protected "
                             "resource: nothing to unprotect; the next apply finishes or retries it")
        import dataclasses
        doc.resources[address] = dataclasses.replace(doc.resources[address], protected=False)
    _edit(g, paths, address, change)
    click.echo(f"{address} is no longer protected; the next plan may destroy it.")
