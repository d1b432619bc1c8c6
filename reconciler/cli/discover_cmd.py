"""`reconciler discover [PATHS] [--kind K]... [--match GLOB] --out FILE.yaml`: write a
manifest for the live objects no state manages, with an `imports:` entry for each, so
that `apply` takes them over without creating anything (see engine/discover.py).

Never overwrites a file, writes no secret, and makes no write call (listings only)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import (
    guarded,
    manifest_root,
    open_store,
    providers,
    sandbox,
    sandbox_option,
    workspace,
)
from reconciler.cli.root import Globals, main
from reconciler.cli.variables_opt import variable_options
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.engine.runner import Workspace

SUFFIXES = (".yaml", ".yml")


class DiscoverError(ReconcilerError):
    """A discover that cannot start: the output exists, an unknown kind."""


@main.command(name="discover")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--kind", "kind_names", multiple=True, metavar="KIND", help="Only this kind (repeatable).")
@click.option("--match", metavar="GLOB", help="Only objects whose name matches (shell-style, e.g. 'train-*').")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The manifest to write (new file).")
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def discover_cmd(g: Globals, paths: tuple[str, ...], kind_names: tuple[str, ...], match: str | None,
                 out: str) -> None:
    """Write a manifest (and imports:) for the live objects no state manages."""
    from reconciler.engine.discover import discover, manifest_text
    from reconciler.providers.contract import Discovers

    paths_l = list(paths) or ["."]
    if Path(out).exists():
        raise DiscoverError(f"{out} exists: discover never overwrites a file; name a new one")
    if Path(out).suffix not in SUFFIXES:
        raise DiscoverError(f"{out}: name a .yaml file")
    folder = Path(out).parent
    if not folder.exists():  # said before any listing is read, not after
        raise DiscoverError(f"--out {out}: the folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise DiscoverError(f"--out {out}: {folder} is not a folder")
    with sandbox(g, paths_l):
        ws = workspace(paths_l) if _has_manifests(paths_l) else _bare(paths_l)
        try:
            ws.ensure_kinds(["*"])  # a name no provider has loads every provider (only the chosen kinds connect)
            able = sorted(k for k, kind in ws.kinds.items() if isinstance(kind, Discovers))
            unknown = [k for k in kind_names if k not in able]
            if unknown:
                raise DiscoverError(f"--kind {unknown[0]}: discover reads {', '.join(able)}")
            chosen = {k: ws.kinds[k] for k in (kind_names or able)}
            state = open_store(g, paths_l, ws.manifest.backend).read()
            found = discover(chosen, ws.context, state, [r.address for r in ws.manifest.resources], match)
        finally:
            ws.close()
    managed = sum(found.skipped.values())
    header = (f"# Written by `reconciler discover` ({time.strftime('%Y-%m-%d %H:%M')}): {found.count} live "
              f"object(s) no state managed.\n# Review it; `reconciler plan` shows each as \"will be imported\", "
              "and `apply` takes them over without creating anything.\n")
    try:
        with open(out, "x", encoding="utf-8") as f:  # "x": never overwrite, even if one appeared meanwhile
            f.write(manifest_text(found, header))
    except OSError as e:
        raise DiscoverError(f"--out {out}: cannot write it ({e.strerror or e.__class__.__name__})") from None
    secret = [name for b in found.blocks for name in b.variables]
    click.echo(f"Wrote {out}: {len(found.blocks)} resource block(s) for {found.count} object(s)"
               f"{f'; {managed} already managed, left out' if managed else ''}.")
    if secret:
        click.echo(f"{len(secret)} secret value(s) are not written: set them before planning "
                   f"({', '.join(f'RECONCILER_VAR_{n}' for n in secret)}).")


def _has_manifests(paths: list[str]) -> bool:
    return any(Path(p).is_file() or (Path(p).is_dir() and any(f.suffix in SUFFIXES and not f.name.startswith(".")
                                                              for f in Path(p).iterdir())) for p in paths)


def _bare(paths: list[str]) -> Workspace:
    """No manifest yet: every provider, configured from the environment."""
    from reconciler.config.model import Manifest
    from reconciler.engine.runner import Workspace

    root = manifest_root(paths)
    manifest = Manifest(resources=[], providers={}, provider_problems={}, variables={}, backend=None, files=[],
                        digest="", root=str(root))
    return Workspace(manifest=manifest, providers={}, loader=providers)
