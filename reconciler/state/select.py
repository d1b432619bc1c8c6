"""Which state store a run uses: --state flag > RECONCILER_STATE > the manifest's
`backend:` block > .reconciler/state.json beside the manifests."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from reconciler.errors import StateError
from reconciler.state.base import StateStore


def open_location(location: str, env: Mapping[str, str] | None = None) -> StateStore:
    if location.startswith(("postgresql://", "postgres://")):
        from reconciler.state.postgres import PostgresStateStore
        return PostgresStateStore(location, env)
    if "://" in location:
        raise StateError(f"unsupported state location {location.split('://')[0]}://... "
                         "(use a file path or postgresql://USER@HOST:PORT/DB?workspace=NAME)")
    from reconciler.state.local import LocalStateStore
    return LocalStateStore(location, env)


def open_store(flag: str | None, env: Mapping[str, str], backend: dict | None, root: Path) -> StateStore:
    if flag:
        return open_location(flag, env)
    if env.get("RECONCILER_STATE"):
        return open_location(env["RECONCILER_STATE"], env)
    if backend:
        if backend.get("url"):
            url = backend["url"]
            if backend.get("workspace") and "workspace=" not in url:
                url += ("&" if "?" in url else "?") + f"workspace={backend['workspace']}"
            return open_location(url, env)
        if backend.get("path"):
            return open_location(str(Path(root) / backend["path"]), env)
    return open_location(str(Path(root) / ".reconciler" / "state.json"), env)
