"""`reconciler import ADDR REMOTE_ID [PATHS...]`: take an object that already exists under
management, as `terraform import` does. The resource must be declared in the manifests;
the object is read through its kind's observe (so it must exist and be visible), then
recorded in the state as adopted. The next plan shows how it differs from the manifest."""
from __future__ import annotations

import click

from reconciler.cli.common import guarded, open_store, sandbox, sandbox_option, workspace
from reconciler.cli.root import Globals, main
from reconciler.cli.variables_opt import variable_options


@main.command(name="import")
@click.argument("address")
@click.argument("remote_id")
@click.argument("paths", nargs=-1, type=click.Path())
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def import_cmd(g: Globals, address: str, remote_id: str, paths) -> None:
    """Record the live object REMOTE_ID as the manifest's resource ADDRESS."""
    from reconciler.errors import StateError
    from reconciler.planner import resolve, state_outputs
    from reconciler.providers.base import Wanted
    from reconciler.state.base import ResourceState

    paths_l = list(paths) or ["."]
    with sandbox(g, paths_l):
        ws = workspace(paths_l)
        try:
            resource = next((r for r in ws.manifest.resources if r.address == address), None)
            if resource is None:
                from reconciler.graph import instances

                some = instances(address, [r.address for r in ws.manifest.resources])[:3]
                if some:
                    raise StateError(f"{address} has for_each or count: import one instance, e.g. {some[0]}")
                raise StateError(f"{address} is not declared in the manifests: add its block first, then import")
            store = open_store(g, paths_l, ws.manifest.backend)
            with store.lock("import"):
                doc = store.read()
                if address in doc.resources:
                    raise StateError(f"{address} is already managed (id {doc.resources[address].id}); "
                                     f"`reconciler state rm {address}` first to point it elsewhere")
                taken = next((a for a, rs in doc.resources.items() if rs.id == remote_id), None)
                if taken:
                    raise StateError(f"{remote_id} is already managed as {taken}")
                kind = ws.kinds[resource.kind]
                spec = resolve(resource.spec, state_outputs(doc))
                wanted = Wanted(address, remote_id, spec, None, base_dir=resource.base_dir)
                live = kind.observe(ws.context(resource.kind, resource.base_dir), [wanted]).get(address)
                if live is None:
                    raise StateError(f"no {resource.kind} with id {remote_id} is visible with these credentials")
                sensitive = set(kind.sensitive)
                doc.resources[address] = ResourceState(
                    kind=resource.kind, id=live.id, last_applied={},
                    outputs={k: v for k, v in live.outputs.items() if k not in sensitive},
                    secrets={k: v for k, v in live.outputs.items() if k in sensitive and v is not None},
                    protected=resource.lifecycle.prevent_destroy, deletion_policy=resource.deletion_policy,
                    adopted=True)
                store.write(doc)
        finally:
            ws.close()
    click.echo(f"Imported {remote_id} as {address}. Run `reconciler plan` to see how it differs from the manifest.")
