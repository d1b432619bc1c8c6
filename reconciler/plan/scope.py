"""Which state entries a plan over some of a folder's files may touch.

`reconciler plan examples/valdi.yaml` must not destroy what `examples/codeocean.yaml`
declares: the state remembers, per resource, the manifest file that declared it
(`ResourceState.file`, relative to the manifest folder). An entry whose file still
exists but was not loaded this run is left out of the plan, and the plan says how many
and why. An entry recorded before files were remembered is left out whenever only some
of the folder's manifests were given.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from reconciler.config.model import Manifest
from reconciler.state.base import StateDoc


def declaring_file(file: str, root: str) -> str:
    """A manifest file as the state records it: relative to the manifest folder."""
    return Path(os.path.relpath(Path(file).resolve(), Path(root).resolve())).as_posix()


def some_files_only(manifest: Manifest) -> bool:
    """Were only some of the manifest folder's files given? Then top-level outputs that
    those files do not declare belong to the others, and are neither planned nor dropped."""
    root = Path(manifest.root).resolve()
    if not root.is_dir():
        return False
    loaded = {declaring_file(f, manifest.root) for f in manifest.files}
    return any(p.suffix in (".yaml", ".yml") and p.is_file() and p.name not in loaded for p in root.iterdir())


def left_out(manifest: Manifest, state: StateDoc) -> dict[str, str | None]:
    """address -> the file that declares it (None: not recorded), for entries to leave alone."""
    root = Path(manifest.root).resolve()
    loaded = {declaring_file(f, manifest.root) for f in manifest.files}
    desired = {r.address for r in manifest.resources}
    folder = {p.name for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()} \
        if root.is_dir() else set()
    partial = bool(folder - loaded)
    out: dict[str, str | None] = {}
    for address, rs in state.resources.items():
        if address in desired:
            continue
        if rs.file:
            if rs.file not in loaded and (root / rs.file).is_file():
                out[address] = rs.file
        elif partial:
            out[address] = None
    return out


def narrowed(state: StateDoc, leave: dict[str, str | None]) -> StateDoc:
    """The state as this plan sees it: the left-out entries hidden (the store keeps them)."""
    if not leave:
        return state
    return replace(state, resources={a: r for a, r in state.resources.items() if a not in leave})


def note(leave: dict[str, str | None], root: str) -> str | None:
    if not leave:
        return None
    by_file: dict[str, int] = {}
    for f in leave.values():
        by_file[f or "(file not recorded)"] = by_file.get(f or "(file not recorded)", 0) + 1
    files = ", ".join(f"{f}: {n}" for f, n in sorted(by_file.items()))
    return (f"{len(leave)} resource(s) in the state were left out because the manifest files that declare "
            f"them were not given ({files}); nothing of theirs is changed or destroyed. Plan the folder "
            f"{root} to include them.")
