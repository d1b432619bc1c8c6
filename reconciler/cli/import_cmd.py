"""`reconciler import ADDR REMOTE_ID [PATHS...]`: take an object that already exists under
management, as `terraform import` does. The resource must be declared in the manifests;
the object is read through its kind's observe (so it must exist and be visible), then
recorded in the state as adopted. The next plan shows how it differs from the manifest."""
from __future__ import annotations

import click

from reconciler.cli.common import (
    guarded,
    open_store,
    sandbox,
    sandbox_option,
    workspace,
)
from reconciler.cli.root import Globals, main
from reconciler.config.terminal import shown
from reconciler.cli.variables_opt import variable_options


@main.command(name="import")
@click.argument("address")
@click.argument("remote_id")
@click.argument("paths", nargs=-1, type=click.Path())
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def import_cmd(g: Globals, address: str, remote_id: str, paths: tuple[str, ...]) -> None:
    """Record the live object REMOTE_ID as the manifest's resource ADDRESS."""
    from reconciler.config.imports import id_problem
    from reconciler.engine.runner import declared_resource, import_object

    why = id_problem(remote_id)
    if why:  # before anything is loaded: an empty or odd id reads no object, or another endpoint
        raise click.BadParameter(why, param_hint="REMOTE_ID")
    paths_l = list(paths) or ["."]
    with sandbox(g, paths_l):
        ws = workspace(paths_l)
        try:
            declared_resource(ws, address)  # before the state is opened: a typo costs nothing
            store = open_store(g, paths_l, ws.manifest.backend)
            with store.lock("import"):
                doc = store.read()
                import_object(ws, doc, address, remote_id)
                store.write(doc)
        finally:
            ws.close()
    click.echo(f"Imported {shown(remote_id, one_line=True)} as {address}. Run `reconciler plan` to see how it differs from the manifest.")
