"""`reconciler doctor`: read-only checks that each configured service answers as the
providers expect (reconciler/providers/doctor.py)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import guarded, sandbox, sandbox_option, workspace
from reconciler.cli.root import Globals, main
from reconciler.config.terminal import shown
from reconciler.providers import doctor as doc

if TYPE_CHECKING:
    from reconciler.engine.runner import Workspace

# removed from the JSON report wherever they appear: secrets, and what names the account
SECRET_FIELDS = ("password", "token", "email", "domain", "host", "endpoint", "project")
SECRET_ENV = ("VALDI_PASSWORD", "VALDI_EMAIL", "VALDI_ENDPOINT", "VALOHAI_TOKEN", "VALOHAI_HOST",
              "VALOHAI_PROJECT", "CODEOCEAN_TOKEN", "CODEOCEAN_DOMAIN")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: a report to attach to a bug report (ids and secrets removed).")
@sandbox_option
@click.pass_obj
@guarded
def doctor(g: Globals, paths: tuple[str, ...], fmt: str) -> None:
    """Check, read-only, that each configured service answers as the providers expect.
    Exit 0 when all is well, 1 with one line per problem."""
    path_list = list(paths)
    with sandbox(g, path_list):
        ws = workspace(path_list)
        try:
            findings = doc.run(_services(ws), {name: p.doctor for name, p in ws.providers.items()
                                               if hasattr(p, "doctor")})
        finally:
            ws.close()
        secrets = [str(v) for block in ws.manifest.providers.values() if isinstance(block, dict)
                   for k, v in block.items() if k in SECRET_FIELDS and v] + \
                  [os.environ[k] for k in SECRET_ENV if os.environ.get(k)]
    if not findings:
        click.echo("No provider is configured or used by these manifests: nothing to check.", err=True)
    click.echo(doc.render_json(findings, secrets) if fmt == "json" else shown(doc.render_text(findings)), nl=False)
    raise SystemExit(doc.exit_code(findings))


def _services(ws: Workspace) -> dict:  # name -> a function giving its client
    """Every provider the manifests configure (`providers:`) or use (a resource's kind)."""
    used = {ws.kind_provider[r.kind] for r in ws.manifest.resources if r.kind in ws.kind_provider}
    names = [n for n in ws.providers if n in used or n in (ws.manifest.providers or {})]
    return {n: (lambda n=n: ws.client(ws.providers[n].kinds[0].name)) for n in names}
